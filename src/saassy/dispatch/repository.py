"""The engine's SQL: claims, leases, fenced attempt writes and adoption.

Every write about an attempt is fenced by (task id, attempt number, executor id, attempt still
live): a supervisor that lost its lease, or a late one from before a crash, matches no row and so
changes nothing. Claims lock the organization row (PostgreSQL: FOR UPDATE SKIP LOCKED) so several
dispatchers never exceed an organization's concurrency; SQLite's BEGIN IMMEDIATE serializes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import distinct, func, select, tuple_, update

from saassy.dispatch import statements
from saassy.dispatch.attempt_usage import usage_columns
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


@dataclass
class Due:
    """An organization's due tasks as a round found them."""

    active: int  # its tasks dispatched or running
    task_ids: list[uuid.UUID] = field(default_factory=list)  # in claim order


@dataclass(frozen=True)
class AttemptFinish:
    """How an attempt ended; the fields are its row's columns."""

    status: AttemptStatus
    exit_code: int | None
    end_reason: str | None
    error: str | None
    usage: Usage | None


class DispatchRepository(RepositoryBase[Task]):
    model = Task

    async def queued_organizations(self, after: uuid.UUID | None, most: int) -> list[Organization]:
        """Up to `most` organizations with queued tasks, in id order after `after`, wrapping
        round; each locked for this claim (one another dispatcher holds is left out).

        One statement: a recursive CTE steps from one organization id to the next in the
        dispatch index (one index seek each, however deep the queue), coming round to the
        first after the last; the repeats once it has come round are dropped.
        """
        statement = statements.queued_organizations(after is not None)
        params = {"most": most} if after is None else {"most": most, "after": after}
        return list((await self.session.execute(statement, params)).scalars())

    async def due_tasks(self, most: dict[uuid.UUID, int], now: datetime) -> dict[uuid.UUID, Due]:
        """Up to `most[organization]` due queued tasks of each, in claim order (priority, then
        FIFO), locked until the claim (those locked elsewhere skipped), and how many it has
        dispatched or running. One statement: an index range per organization.

        An organization with no due task is left out. Its count is read in this statement's
        snapshot, taken after `queued_organizations` locked it: another dispatcher's claim for
        it has committed by then, so it is counted.
        """
        wanted = [(organization_id, limit) for organization_id, limit in most.items() if limit > 0]
        if not wanted:
            return {}
        params: dict[str, Any] = {"now": now}
        for n, (organization_id, limit) in enumerate(wanted):
            params[f"organization_{n}"] = organization_id
            params[f"limit_{n}"] = limit
        result = await self.session.execute(statements.due_tasks(len(wanted)), params)
        rows = sorted(result.all(), key=lambda row: (-row.priority, row.run_after, row.id))
        found: dict[uuid.UUID, Due] = {}
        for row in rows:
            found.setdefault(row.organization_id, Due(row.active)).task_ids.append(row.id)
        return found

    async def organizations_running(self) -> int:
        """How many organizations have tasks dispatched or running: a range of the dispatch
        index, as long as the tasks running everywhere."""
        statement = select(func.count(distinct(Task.organization_id))).where(
            Task.status.in_(statements.ACTIVE_TASK)
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def claim(
        self,
        task_ids: Sequence[uuid.UUID],
        *,
        executor_id: str,
        now: datetime,
        lease: timedelta,
        running: bool = False,
    ) -> list[Claimed]:
        """Claim these queued tasks (those no longer queued are left out), in the given order.

        `running`: the executor starts them this instant, so they go straight to `running`
        (one transaction instead of a claim and then a second one to mark them running).
        """
        if not task_ids:
            return []
        claimed = await self.session.execute(
            statements.claim(running), {"ids": list(task_ids), "now": now}
        )
        by_id = {task.id: task for task in claimed.scalars()}
        tasks = [by_id[task_id] for task_id in task_ids if task_id in by_id]
        if not tasks:
            return []
        attempt = AttemptStatus.running if running else AttemptStatus.dispatched
        await self.session.execute(
            statements.INSERT_ATTEMPTS,
            [
                {
                    "task_id": task.id,
                    "organization_id": task.organization_id,
                    "number": task.attempt_count,
                    "status": attempt,
                    "started_at": now if running else None,
                    "executor_id": executor_id,
                    "lease_expires_at": now + lease,
                    "heartbeat_at": now,
                }
                for task in tasks
            ],
        )
        return [Claimed(task.id, task.organization_id, task.attempt_count, task) for task in tasks]

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
        self,
        executor_id: str,
        attempts: Collection[tuple[uuid.UUID, int]],
        now: datetime,
        lease: timedelta,
    ) -> set[tuple[uuid.UUID, int]]:
        """Renew these (task id, number) attempts if still the executor's and live, in one
        UPDATE; returns those still held. Only attempts a live supervisor watches are named:
        one whose supervisor died keeps its lease running out, and adoption takes it."""
        if not attempts:
            return set()
        result = await self.session.execute(
            update(TaskAttempt)
            .where(
                TaskAttempt.executor_id == executor_id,
                TaskAttempt.status.in_(LIVE_ATTEMPT),
                tuple_(TaskAttempt.task_id, TaskAttempt.number).in_(list(attempts)),
            )
            .values(lease_expires_at=now + lease, heartbeat_at=now)
            .returning(TaskAttempt.task_id, TaskAttempt.number)
            .execution_options(synchronize_session=False)
        )
        return {(task_id, number) for task_id, number in result}

    async def take_over(
        self,
        task_id: uuid.UUID,
        organization_id: uuid.UUID,
        number: int,
        sent_by: str,
        executor_id: str,
        now: datetime,
        lease: timedelta,
    ) -> bool:
        """A worker takes a dispatched attempt the scheduler `sent_by` leased: the lease is
        its own from now on. False when the attempt is no longer that one's to hand over
        (a duplicate message, or adopted after its lease ran out), or when the message names
        another organization than the task's (it decides where events and artifacts go):
        run nothing."""
        of_organization = select(Task.id).where(
            Task.id == task_id, Task.organization_id == organization_id
        )
        result = await self.session.execute(
            update(TaskAttempt)
            .where(self._fence(task_id, number, sent_by))
            .where(TaskAttempt.status == AttemptStatus.dispatched)
            .where(TaskAttempt.task_id.in_(of_organization))
            .values(executor_id=executor_id, lease_expires_at=now + lease, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def count_live_attempts(self, executor_prefix: str) -> int:
        """Attempts dispatched or running under executors whose ids start with the prefix."""
        statement = select(func.count()).where(
            TaskAttempt.status.in_(LIVE_ATTEMPT),
            TaskAttempt.executor_id.startswith(executor_prefix, autoescape=True),
        )
        return int((await self.session.execute(statement)).scalar_one())

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
            # Already running for this executor: a retry whose first commit went through.
            running = await self.session.scalar(
                select(func.count())
                .select_from(TaskAttempt)
                .where(self._fence(task_id, number, executor_id))
                .where(TaskAttempt.status == AttemptStatus.running)
            )
            return running == 1
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
                "new_status": end.status,
                "new_exit_code": end.exit_code,
                "new_end_reason": end.end_reason,
                "new_error": end.error,
                **{f"new_{name}": value for name, value in usage_columns(end.usage).items()},
                "new_finished_at": now,
            },
        )
        return _rowcount(result) == 1

    async def release_lease(
        self,
        task_id: uuid.UUID,
        number: int,
        executor_id: str,
        now: datetime,
        usage: Usage | None = None,
    ) -> None:
        """Hand the attempt to adoption now (shutdown), instead of when the lease runs out,
        with what its killed sandbox used for adoption to bill."""
        values: dict[str, Any] = {"lease_expires_at": now - timedelta(seconds=1)}
        if usage is not None:
            values |= usage_columns(usage)
        await self.session.execute(
            update(TaskAttempt)
            .where(self._fence(task_id, number, executor_id))
            .values(**values)
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

    async def expired_attempts(
        self,
        now: datetime,
        limit: int,
        executor_id: str | None = None,
        running_here: Collection[tuple[uuid.UUID, int]] = (),
    ) -> Sequence[TaskAttempt]:
        """Live attempts whose leases ran out before `now`, oldest first, locked; but not
        `running_here`, the (task id, number) attempts `executor_id` still runs."""
        statement = (
            select(TaskAttempt)
            .where(TaskAttempt.status.in_(LIVE_ATTEMPT), TaskAttempt.lease_expires_at < now)
            .order_by(TaskAttempt.lease_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if executor_id is not None and running_here:
            # Never NULL (an attempt without an executor would drop out under NOT NULL).
            ours = TaskAttempt.executor_id.is_not_distinct_from(executor_id) & tuple_(
                TaskAttempt.task_id, TaskAttempt.number
            ).in_(list(running_here))
            statement = statement.where(~ours)
        return (await self.session.execute(statement)).scalars().all()

    async def live_attempts(self) -> list[tuple[uuid.UUID, int, str | None]]:
        """(task id, number, executor id) of every attempt adoption may still take over."""
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
                **usage_columns(usage),
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1
