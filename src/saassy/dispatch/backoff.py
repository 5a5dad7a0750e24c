"""When a failed attempt's task may run again."""

from __future__ import annotations

from datetime import datetime, timedelta

from saassy.tasks.catalog import TaskType


def next_run_after(now: datetime, task_type: TaskType | None, failed_attempt: int) -> datetime:
    """`now` plus the type's backoff after attempt `failed_attempt`: doubling, capped."""
    if task_type is None:
        return now
    return now + timedelta(seconds=task_type.backoff_s(failed_attempt))
