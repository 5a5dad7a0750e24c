"""Quota metrics and their windows: `tasks` per calendar month, `action:<name>` per day (UTC)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from saassy.kit.time import month_start, next_month_start
from saassy.plans.catalog import Plan

TASKS = "tasks"
ACTION_PREFIX = "action:"
_METRIC = re.compile(r"^(tasks|action:[a-z][a-z0-9_]{0,39})$")


class Period(StrEnum):
    month = "month"
    day = "day"


@dataclass(frozen=True)
class QuotaWindow:
    """One metric's current window and its limit under a plan (`None`: unlimited)."""

    metric: str
    period: Period
    start: date
    resets_at: datetime
    limit: int | None

    @property
    def starts_at(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)


def action_metric(name: str) -> str:
    return f"{ACTION_PREFIX}{name}"


def quota_window(plan: Plan, metric: str, now: datetime) -> QuotaWindow:
    """The window `now` falls in for `metric`; an action without a cap is unlimited."""
    if not _METRIC.match(metric):
        raise ValueError(f"unknown quota metric {metric!r}: use 'tasks' or 'action:<name>'")
    now = now.astimezone(UTC)
    if metric == TASKS:
        return QuotaWindow(
            metric, Period.month, month_start(now), next_month_start(now), plan.tasks_per_month
        )
    today = now.date()
    tomorrow = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    cap = plan.daily_action_caps.get(metric.removeprefix(ACTION_PREFIX))
    return QuotaWindow(metric, Period.day, today, tomorrow, cap)
