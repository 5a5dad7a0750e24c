"""The engine's statements that run for every attempt, built once with bind parameters.

Building a statement and its cache key costs more CPU than running it on SQLite (ORM-enabled
UPDATEs most of all); a statement built once keeps its cache key, so each execution only binds
values. `DispatchRepository` runs these; what they mean is documented there.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from saassy.kit.repository import table_of
from saassy.models import AttemptStatus, Task, TaskAttempt, TaskStatus, UsageRecord

LIVE_ATTEMPT = (AttemptStatus.dispatched, AttemptStatus.running)
ACTIVE_TASK = (TaskStatus.dispatched, TaskStatus.running)

tasks = table_of(Task)
attempts = table_of(TaskAttempt)


# Fenced: the attempt is still live and leased to this executor.
FINISH_ATTEMPT = (
    update(attempts)
    .where(
        attempts.c.task_id == bindparam("fence_task_id"),
        attempts.c.number == bindparam("fence_number"),
        attempts.c.executor_id == bindparam("fence_executor_id"),
        attempts.c.status.in_(LIVE_ATTEMPT),
    )
    .values(
        {
            "lease_expires_at": None,
            **{
                column: bindparam(f"new_{column}")
                for column in (
                    "status",
                    "finished_at",
                    "exit_code",
                    "end_reason",
                    "error",
                    "cpu_seconds",
                    "peak_memory_bytes",
                    "wall_seconds",
                )
            },
        }
    )
)


@cache
def update_task(columns: tuple[str, ...], unless_canceled: bool) -> Any:
    """Binds `task_id`, `number` and `new_<column>` for each of `columns`."""
    statement = update(tasks).where(
        tasks.c.id == bindparam("task_id"),
        tasks.c.attempt_count == bindparam("number"),
        tasks.c.status.in_(ACTIVE_TASK),
    )
    if unless_canceled:
        statement = statement.where(tasks.c.cancel_requested_at.is_(None))
    return statement.values({column: bindparam(f"new_{column}") for column in columns})


@cache
def record_usage(dialect: str) -> Any:
    """Insert-or-ignore on the ledger's unique key; run with one parameter set per metric."""
    insert_into = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert_into(table_of(UsageRecord)).on_conflict_do_nothing(
        index_elements=["task_id", "attempt_number", "metric"]
    )
