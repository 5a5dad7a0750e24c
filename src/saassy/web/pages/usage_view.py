"""An organization's usage as the dashboard shows it: one bar per quota, usage per day, and what
the period costs at the plan's prices. Shared by the home page and the staff pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.kit.time import utcnow
from saassy.metering.metrics import CPU_SECONDS
from saassy.models import Organization, Task, UsageRecord
from saassy.plans.catalog import Catalog, Plan
from saassy.quotas.periods import ACTION_PREFIX, TASKS
from saassy.quotas.service import usage_summary
from saassy.quotas.storage import storage_used_kib
from saassy.tasks.repository import LIVE_STATUSES

NEAR = 0.8  # a quota this full raises a banner


@dataclass(frozen=True)
class UsageBar:
    """One quota: `limit` None is unlimited; `resets_at` None when it is a level, not a flow."""

    key: str
    label: str
    used: float
    limit: float | None
    unit: str
    resets_at: datetime | None
    note: str

    @property
    def fraction(self) -> float | None:
        if self.limit is None:
            return None
        if self.limit == 0:
            return 1.0
        return self.used / self.limit

    @property
    def percent(self) -> int:
        """For the bar's width and its text: 0-100."""
        fraction = self.fraction
        return 0 if fraction is None else min(100, round(fraction * 100))

    @property
    def state(self) -> str:
        fraction = self.fraction
        if fraction is None or fraction < NEAR:
            return "ok"
        return "full" if fraction >= 1 else "near"


@dataclass(frozen=True)
class Usage:
    plan: Plan
    period_start: datetime
    period_end: datetime
    bars: list[UsageBar]

    @property
    def alerts(self) -> list[UsageBar]:
        """Quotas near or at their limit that stop work: concurrency only makes tasks wait."""
        return [bar for bar in self.bars if bar.state != "ok" and bar.key != "concurrent"]


def _mb(kib: int) -> float:
    return round(kib / 1024, 2)


async def live_task_count(session: AsyncSession, organization_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Task)
        .where(Task.status.in_(LIVE_STATUSES), Task.organization_id == organization_id)
    )
    return int(count or 0)


async def usage_of(
    session: AsyncSession, catalog: Catalog, organization: Organization, now: datetime | None = None
) -> Usage:
    """Every quota of the organization's effective plan, used against its limit."""
    now = now or utcnow()
    summary = await usage_summary(session, catalog, organization, now)
    plan = summary.plan
    bars: list[UsageBar] = []
    for quota in summary.quotas:
        window = quota.window
        if window.metric == TASKS:
            label, note = "Tasks this month", "Tasks submitted, counted when admitted."
        else:
            name = window.metric.removeprefix(ACTION_PREFIX)
            label, note = f"{name} actions today", "Counted per day (UTC)."
        bars.append(
            UsageBar(
                window.metric,
                label,
                quota.used,
                window.limit,
                "tasks" if window.metric == TASKS else "actions",
                window.resets_at,
                note,
            )
        )
    bars.insert(
        1,
        UsageBar(
            "concurrent",
            "Tasks running now",
            await live_task_count(session, organization.id),
            plan.max_concurrent_tasks,
            "tasks",
            None,
            "More wait in the queue until one finishes.",
        ),
    )
    storage_limit = None if plan.storage_mb is None else float(plan.storage_mb)
    retention = (
        f"Artifacts are deleted {plan.retention_days} days after their task ends."
        if plan.retention_days
        else "Artifacts are kept until deleted."
    )
    bars.insert(
        2,
        UsageBar(
            "storage",
            "Storage",
            _mb(await storage_used_kib(session, organization.id)),
            storage_limit,
            "MB",
            None,
            retention,
        ),
    )
    return Usage(plan, summary.period_start, summary.period_end, bars)


@dataclass(frozen=True)
class DayUsage:
    day: date
    tasks: int
    cpu_seconds: float


def _utc_day(session: AsyncSession, column: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


async def usage_per_day(
    session: AsyncSession, organization_id: uuid.UUID, start: datetime, end: datetime
) -> list[DayUsage]:
    """Tasks submitted and CPU-seconds measured on each day (UTC) of [start, end)."""
    task_day = _utc_day(session, Task.created_at)
    tasks = await session.execute(
        select(task_day, func.count())
        .where(
            Task.organization_id == organization_id,
            Task.created_at >= start,
            Task.created_at < end,
        )
        .group_by(task_day)
    )
    record_day = _utc_day(session, UsageRecord.recorded_at)
    cpu = await session.execute(
        select(record_day, func.sum(UsageRecord.quantity))
        .where(
            UsageRecord.organization_id == organization_id,
            UsageRecord.recorded_at >= start,
            UsageRecord.recorded_at < end,
            UsageRecord.metric == CPU_SECONDS,
        )
        .group_by(record_day)
    )
    tasks_by_day = {_as_date(day): int(count) for day, count in tasks.all()}
    cpu_by_day = {_as_date(day): float(total or 0) for day, total in cpu.all()}
    first, last = start.astimezone(UTC).date(), (end - timedelta(microseconds=1)).date()
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [
        DayUsage(day, tasks_by_day.get(day, 0), round(cpu_by_day.get(day, 0.0), 3)) for day in days
    ]


@dataclass(frozen=True)
class Cost:
    """What the period costs at the plan's prices; `total` None: priced by contract."""

    lines: list[tuple[str, Decimal]]
    total: Decimal | None
    included: list[str]


def cost_so_far(plan: Plan) -> Cost:
    """The plan's flat monthly price and what it includes.

    Plans have no per-unit prices: a task past the monthly quota is refused, never billed,
    so nothing used this period adds to the flat price.
    """
    included = [
        "Unlimited tasks a month"
        if plan.tasks_per_month is None
        else f"{plan.tasks_per_month:,} tasks a month",
        f"{plan.max_concurrent_tasks} running at a time, up to {plan.max_task_duration_s:,} s each",
        f"{plan.resources.memory_mb:,} MB of memory and {plan.resources.cpus} CPU per task",
        "Unlimited storage" if plan.storage_mb is None else f"{plan.storage_mb:,} MB of storage",
    ]
    included += [f"{cap:,} {name} actions a day" for name, cap in plan.daily_action_caps.items()]
    if plan.price_usd_month is None:
        return Cost([], None, included)
    price = Decimal(plan.price_usd_month).quantize(Decimal("0.01"))
    return Cost([("Flat monthly price", price)], price, included)
