"""The engine's SQL: claims, leases, fenced attempt writes and adoption.

Every write about an attempt is fenced by (task id, attempt number, executor id, attempt still
live): a supervisor that lost its lease, or a late one from before a crash, matches no row and so
changes nothing. Claims lock the organization row (PostgreSQL: FOR UPDATE SKIP LOCKED) so several
dispatchers never exceed an organization's concurrency; SQLite's BEGIN IMMEDIATE serializes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from saassy.dispatch import statements
from saassy.dispatch.statements import ACTIVE_TASK, LIVE_ATTEMPT
from saassy.kit.repository import RepositoryBase
from saassy.models import AttemptStatus, Organization, Task, TaskAttempt, TaskStatus
from saassy.runtime.base import Usage


def _rowcount(result: Any) -> int:
    count: int = result.rowcount
    return count


@dataclass(frozen=True)
class Claimed:
    task_id: uuid.UUID
    organization_id: uuid.UUID
    attempt_number: int
    task: Task  # as the claim left it: what a supervisor in this process needs to start


@dataclass(frozen=True)
class AttemptFinish:
    """How an attempt ended; the fields are its row's columns."""

    status: AttemptStatus
    exit_code: int | None
    end_reason: str | None
    error: str | None
    cpu_seconds: float | None
    peak_memory_bytes: int | None
    wall_seconds: float | None


class DispatchRepository(RepositoryBase[Task]):
    model = Task

    async def next_queued_organization(self, after: uuid.UUID | None) -> uuid.UUID | None:
        """The next organization (by id, after `after`) with queued tasks: one index seek."""
        statement = select(Task.organization_id).where(Task.status == TaskStatus.queued)
        if after is not None:
            statement = statement.where(Task.organization_id > after)
        statement = statement.order_by(Task.organization_id).limit(1)
        found: uuid.UUID | None = (await self.session.execute(statement)).scalar()
        return found

    async def lock_organization(self, organization_id: uuid.UUID) -> Organization | None:
        """The organization, locked for this claim; None if another dispatcher holds it."""
        statement = (
            select(Organization)
            .where(Organization.id == organization_id)
            .with_for_update(skip_locked=True)
        )
        found: Organization | None = (await self.session.execute(statement)).scalar()
        return found

    async def active_count(self, organization_id: uuid.UUID) -> int:
        statement = select(func.count()).where(
            Task.organization_id == organization_id, Task.status.in_(ACTIVE_TASK)
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def claim(
        self,
        organization_id: uuid.UUID,
        limit: int,
        *,
        executor_id: str,
        now: datetime,
        lease: timedelta,
        running: bool = False,
    ) -> list[Claimed]:
        """Up to `limit` due queued tasks of one organization: priority first, then FIFO.

        `running`: the executor starts them this instant, so they go straight to `running`
        (one transaction instead of a claim and then a second one to mark them running).
        """
        due = (
            select(Task.id)
            .where(
                Task.status == TaskStatus.queued,
                Task.organization_id == organization_id,
                Task.run_after <= now,
            )
            .order_by(Task.priority.desc(), Task.run_after, Task.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            # Evaluated once: PostgreSQL may re-run an IN-subquery, and with SKIP LOCKED each
            # run can pick other rows, claiming more than `limit`.
            .cte("due")
            .prefix_with("MATERIALIZED")
        )
        values: dict[str, Any] = {
            "status": TaskStatus.running if running else TaskStatus.dispatched,
            "attempt_count": Task.attempt_count + 1,
        }
        if running:
            values["started_at"] = func.coalesce(Task.started_at, now)
        claimed = await self.session.execute(
            update(Task)
            .where(Task.id.in_(select(due.c.id)), Task.status == TaskStatus.queued)
            .values(**values)
            .returning(Task)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        tasks = sorted(claimed.scalars(), key=lambda task: (-task.priority, task.run_after))
        if not tasks:
            return []
        self.session.add_all(
            TaskAttempt(
                task_id=task.id,
                organization_id=organization_id,
                number=task.attempt_count,
                status=AttemptStatus.running if running else AttemptStatus.dispatched,
                started_at=now if running else None,
                executor_id=executor_id,
                lease_expires_at=now + lease,
                heartbeat_at=now,
            )
            for task in tasks
        )
        await self.session.flush()
        return [Claimed(task.id, organization_id, task.attempt_count, task) for task in tasks]

    # Fenced writes of one attempt ------------------------------------------------------------

    def _fence(self, task_id: uuid.UUID, number: int, executor_id: str) -> Any:
        return (
            (TaskAttempt.task_id == task_id)
            & (TaskAttempt.number == number)
            & (TaskAttempt.executor_id == executor_id)
            & TaskAttempt.status.in_(LIVE_ATTEMPT)
        )

    async def attempt(self, task_id: uuid.UUID, number: int) -> TaskAttempt | None:
        statement = select(TaskAttempt).where(
            TaskAttempt.task_id == task_id, TaskAttempt.number == number
        )
        found: TaskAttempt | None = (await self.session.execute(statement)).scalar()
        return found

    async def renew_leases(
        self, executor_id: str, now: datetime, lease: timedelta
    ) -> set[tuple[uuid.UUID, int]]:
        """Renew every live attempt of the executor; (task id, number) of those still held."""
        result = await self.session.execute(
            update(TaskAttempt)
            .where(TaskAttempt.executor_id == executor_id, TaskAttempt.status.in_(LIVE_ATTEMPT))
            .values(lease_expires_at=now + lease, heartbeat_at=now)
            .returning(TaskAttempt.task_id, TaskAttempt.number)
            .execution_options(synchronize_session=False)
        )
        return {(task_id, number) for task_id, number in result}

    async def cancel_requested_among(self, task_ids: list[uuid.UUID]) -> list[uuid.UUID]:
        if not task_ids:
            return []
        statement = select(Task.id).where(
            Task.id.in_(task_ids), Task.cancel_requested_at.is_not(None)
        )
        return list((await self.session.execute(statement)).scalars())

    async def mark_running(
        self, task_id: uuid.UUID, number: int, executor_id: str, now: datetime
    ) -> bool:
        result = await self.session.execute(
            update(TaskAttempt)
            .where(self._fence(task_id, number, executor_id))
            .where(TaskAttempt.status == AttemptStatus.dispatched)
            .values(status=AttemptStatus.running, started_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            return False
        await self.session.execute(
            update(Task)
            .where(Task.id == task_id, Task.attempt_count == number)
            .where(Task.status == TaskStatus.dispatched)
            .values(status=TaskStatus.running, started_at=func.coalesce(Task.started_at, now))
            .execution_options(synchronize_session=False)
        )
        return True

    async def finish_attempt(
        self, task_id: uuid.UUID, number: int, executor_id: str, now: datetime, end: AttemptFinish
    ) -> bool:
        """Close the attempt if this supervisor still holds it; False: fenced off, write nothing."""
        result = await self.session.execute(
            statements.FINISH_ATTEMPT,
            {
                "fence_task_id": task_id,
                "fence_number": number,
                "fence_executor_id": executor_id,
                **{f"new_{name}": value for name, value in vars(end).items()},
                "new_finished_at": now,
            },
        )
        return _rowcount(result) == 1

    async def release_lease(
        self, task_id: uuid.UUID, number: int, executor_id: str, now: datetime
    ) -> None:
        """Hand the attempt to adoption now (shutdown), instead of when the lease runs out."""
        await self.session.execute(
            update(TaskAttempt)
            .where(self._fence(task_id, number, executor_id))
            .values(lease_expires_at=now - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )

    async def live_task(self, task_id: uuid.UUID, number: int) -> Task | None:
        """The task if `number` is still its current attempt and it is not finished."""
        statement = (
            select(Task)
            .where(Task.id == task_id, Task.attempt_count == number, Task.status.in_(ACTIVE_TASK))
            .with_for_update()
        )
        found: Task | None = (await self.session.execute(statement)).scalar()
        return found

    async def update_task(
        self, task_id: uuid.UUID, number: int, *, unless_canceled: bool = False, **values: Any
    ) -> bool:
        """Write the task if `number` is still its live attempt (and no cancel was asked)."""
        statement = statements.update_task(tuple(values), unless_canceled)
        params = {f"new_{column}": value for column, value in values.items()}
        result = await self.session.execute(
            statement, {"task_id": task_id, "number": number, **params}
        )
        return _rowcount(result) == 1

    # Adoption -----------------------------------------------------------------------------------

    async def expired_attempts(self, now: datetime, limit: int) -> Sequence[TaskAttempt]:
        statement = (
            select(TaskAttempt)
            .where(TaskAttempt.status.in_(LIVE_ATTEMPT), TaskAttempt.lease_expires_at < now)
            .order_by(TaskAttempt.lease_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def live_attempts(self) -> list[tuple[uuid.UUID, int, str | None]]:
        """(task id, number, executor id) of every attempt adoption may still settle."""
        statement = select(TaskAttempt.task_id, TaskAttempt.number, TaskAttempt.executor_id)
        statement = statement.where(
            TaskAttempt.status.in_(LIVE_ATTEMPT), TaskAttempt.lease_expires_at.is_not(None)
        )
        rows = await self.session.execute(statement)
        return [(task_id, number, executor_id) for task_id, number, executor_id in rows]

    async def mark_lost(
        self, attempt_id: uuid.UUID, now: datetime, error: str, usage: Usage | None = None
    ) -> bool:
        result = await self.session.execute(
            update(TaskAttempt)
            .where(
                TaskAttempt.id == attempt_id,
                TaskAttempt.status.in_(LIVE_ATTEMPT),
                TaskAttempt.lease_expires_at < now,
            )
            .values(
                status=AttemptStatus.lost,
                finished_at=now,
                end_reason="lost",
                error=error,
                lease_expires_at=None,
                cpu_seconds=usage.cpu_seconds if usage else None,
                peak_memory_bytes=usage.peak_memory_bytes if usage else None,
                wall_seconds=usage.wall_seconds if usage else None,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1
