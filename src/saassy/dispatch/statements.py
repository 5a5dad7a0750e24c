"""The engine's statements that run for every attempt, built once with bind parameters.

Building a statement and its cache key costs more CPU than running it on SQLite (ORM-enabled
UPDATEs most of all); a statement built once keeps its cache key, so each execution only binds
values. `DispatchRepository` runs these; what they mean is documented there.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Integer, bindparam, func, insert, literal, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite

from saassy.kit.repository import table_of
from saassy.models import AttemptStatus, Organization, Task, TaskAttempt, TaskStatus, UsageRecord

LIVE_ATTEMPT = (AttemptStatus.dispatched, AttemptStatus.running)
ACTIVE_TASK = (TaskStatus.dispatched, TaskStatus.running)

tasks = table_of(Task)
attempts = table_of(TaskAttempt)


def _next_queued_organization(after: Any) -> Any:
    """The first organization id after `after` (None: the first) with queued tasks."""
    statement = select(tasks.c.organization_id).where(tasks.c.status == TaskStatus.queued)
    if after is not None:
        statement = statement.where(tasks.c.organization_id > after)
    return statement.order_by(tasks.c.organization_id).limit(1).scalar_subquery()


@cache
def queued_organizations(after: bool) -> Any:
    """Binds `after` (if `after`) and `most`: a recursive CTE of index seeks, then the lock."""
    first = _next_queued_organization(None)
    start = first
    if after:
        start = func.coalesce(_next_queued_organization(bindparam("after")), first)
    ring = select(start.label("id"), literal(1).label("turn")).cte("ring", recursive=True)
    ring = ring.union_all(
        select(func.coalesce(_next_queued_organization(ring.c.id), first), ring.c.turn + 1).where(
            ring.c.id.is_not(None), ring.c.turn < bindparam("most")
        )
    )
    turns = (
        select(ring.c.id, func.min(ring.c.turn).label("turn"))
        .where(ring.c.id.is_not(None))
        .group_by(ring.c.id)
        .subquery()
    )
    return (
        select(Organization)
        .join(turns, Organization.id == turns.c.id)
        .where(Organization.deleted_at.is_(None))  # its tasks were canceled with it
        .order_by(turns.c.turn)
        .with_for_update(of=Organization, skip_locked=True)
    )


@cache
def due_tasks(organizations: int) -> Any:
    """Binds `now`, and `organization_<n>` and `limit_<n>` for each of `organizations`."""
    branches = []
    for n in range(organizations):
        organization_id = bindparam(f"organization_{n}", type_=tasks.c.organization_id.type)
        due = (
            select(tasks.c.id, tasks.c.organization_id, tasks.c.priority, tasks.c.run_after)
            .where(
                tasks.c.status == TaskStatus.queued,
                tasks.c.organization_id == organization_id,
                tasks.c.run_after <= bindparam("now"),
            )
            .order_by(tasks.c.priority.desc(), tasks.c.run_after, tasks.c.id)
            .limit(bindparam(f"limit_{n}", type_=Integer))
            .with_for_update(skip_locked=True)
            .subquery()
        )
        active = (
            select(func.count())
            .where(tasks.c.status.in_(ACTIVE_TASK), tasks.c.organization_id == organization_id)
            .scalar_subquery()
        )
        # A subquery each: PostgreSQL refuses FOR UPDATE on a UNION's members.
        branches.append(select(*due.c, active.label("active")))
    return union_all(*branches)


@cache
def claim(running: bool) -> Any:
    """Binds `ids` (a list) and `now`; returns the claimed Task rows."""
    values: dict[str, Any] = {
        "status": TaskStatus.running if running else TaskStatus.dispatched,
        "attempt_count": Task.attempt_count + 1,
    }
    if running:
        values["started_at"] = func.coalesce(Task.started_at, bindparam("now"))
    return (
        update(Task)
        .where(Task.id.in_(bindparam("ids", expanding=True)), Task.status == TaskStatus.queued)
        .values(**values)
        .returning(Task)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


INSERT_ATTEMPTS = insert(attempts)

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
