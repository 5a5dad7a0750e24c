"""SQL for tasks: tenant reads take an OrganizationScope; state changes are conditional."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, Update, func, insert, select, update

from saassy.auth.principal import OrganizationScope
from saassy.kit.pagination import PageParams, keyset
from saassy.kit.repository import RepositoryBase, table_of
from saassy.kit.time import utcnow
from saassy.models import Task, TaskAttempt, TaskStatus, UsageRecord

LIVE_STATUSES = (TaskStatus.dispatched, TaskStatus.running)


@dataclass(frozen=True)
class TaskFilters:
    statuses: tuple[TaskStatus, ...] = ()
    type: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount


# Built once: building and hashing a statement per submission costs more CPU than running it.
_INSERT_TASK = insert(table_of(Task))


class TaskRepository(RepositoryBase[Task]):
    model = Task

    async def insert_new(self, **values: Any) -> Task:
        """Insert a task in one Core statement (no unit of work); it is not put in the session."""
        values.setdefault("id", uuid.uuid4())
        values.setdefault("created_at", utcnow())
        await self.session.execute(_INSERT_TASK, values)
        return Task(**values)

    async def get_in_scope(self, task_id: uuid.UUID, scope: OrganizationScope) -> Task | None:
        if not scope.ids:
            return None
        return await self.one_or_none(
            self.select().where(Task.id == task_id, Task.organization_id.in_(scope.ids))
        )

    async def refreshed(self, task_id: uuid.UUID) -> Task:
        """The row as it is now (after a conditional UPDATE), not the session's copy."""
        task = await self.session.get(Task, task_id, populate_existing=True)
        assert task is not None
        return task

    async def get_by_idempotency_key(self, organization_id: uuid.UUID, key: str) -> Task | None:
        return await self.one_or_none(
            self.select().where(
                Task.organization_id == organization_id, Task.idempotency_key == key
            )
        )

    async def list_for_organization(
        self,
        organization_id: uuid.UUID,
        scope: OrganizationScope,
        filters: TaskFilters,
        params: PageParams,
        *,
        newest_first: bool = True,
    ) -> Sequence[Task]:
        """One page past the cursor, newest first (`newest_first=False`: the page before it,
        oldest first, for a "Previous" link); one row more than the page, to peek."""
        if organization_id not in scope:
            return []
        statement = self.select().where(Task.organization_id == organization_id)
        if filters.statuses:
            statement = statement.where(Task.status.in_(filters.statuses))
        if filters.type is not None:
            statement = statement.where(Task.type == filters.type)
        if filters.created_after is not None:
            statement = statement.where(Task.created_at >= filters.created_after)
        if filters.created_before is not None:
            statement = statement.where(Task.created_at < filters.created_before)
        return await self.all(
            keyset(statement, params, Task.created_at, Task.id, newest_first=newest_first)
        )

    async def cancel_if_queued(self, task_id: uuid.UUID, now: datetime) -> bool:
        """Queued -> canceled in one statement; False if a dispatcher claimed it first."""
        statement = _cancel_queued(
            Task.id == task_id, now, "Canceled before it started.", "canceled"
        )
        return _rowcount(await self.session.execute(statement)) == 1

    async def request_cancel(self, task_id: uuid.UUID, now: datetime) -> bool:
        """Mark a dispatched or running task for its executor to kill; False if it is not live."""
        return _rowcount(await self.session.execute(_request_cancel(Task.id == task_id, now))) == 1

    async def cancel_queued_of(
        self, organization_id: uuid.UUID, now: datetime, error: str, error_code: str
    ) -> Sequence[Task]:
        """Every queued task of the organization -> canceled; the rows as they are now."""
        statement = _cancel_queued(Task.organization_id == organization_id, now, error, error_code)
        result = await self.session.execute(
            statement.returning(Task).execution_options(populate_existing=True)
        )
        return result.scalars().all()

    async def request_cancel_of(self, organization_id: uuid.UUID, now: datetime) -> int:
        """Mark every dispatched or running task of the organization for its executor to kill."""
        statement = _request_cancel(Task.organization_id == organization_id, now)
        return _rowcount(await self.session.execute(statement))

    async def attempts_of(self, task_id: uuid.UUID) -> Sequence[TaskAttempt]:
        statement = (
            select(TaskAttempt).where(TaskAttempt.task_id == task_id).order_by(TaskAttempt.number)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def usage_of(self, task_id: uuid.UUID) -> Sequence[tuple[int, str, float]]:
        """(attempt number, metric, quantity) of every ledger row of the task."""
        statement = select(
            UsageRecord.attempt_number, UsageRecord.metric, UsageRecord.quantity
        ).where(UsageRecord.task_id == task_id)
        rows = (await self.session.execute(statement)).all()
        return [(number, metric, quantity) for number, metric, quantity in rows]


def _cancel_queued(which: ColumnElement[bool], now: datetime, error: str, code: str) -> Update:
    """The queued tasks `which` selects -> canceled, as if they had never been dispatched."""
    return (
        update(Task)
        .where(which, Task.status == TaskStatus.queued)
        .values(
            status=TaskStatus.canceled,
            cancel_requested_at=now,
            finished_at=now,
            error=error,
            error_code=code,
        )
        .execution_options(synchronize_session=False)
    )


def _request_cancel(which: ColumnElement[bool], now: datetime) -> Update:
    """Mark the live tasks `which` selects for their executor to kill (the first request wins)."""
    return (
        update(Task)
        .where(which, Task.status.in_(LIVE_STATUSES))
        .values(cancel_requested_at=func.coalesce(Task.cancel_requested_at, now))
        .execution_options(synchronize_session=False)
    )
