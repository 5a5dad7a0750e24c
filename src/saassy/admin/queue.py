"""How far behind the task engine and the e-mail outbox are: the staff's system page and
the metrics read them.

Every read is an aggregate over queued rows (the dispatch index starts with the status) or a
bounded top-N, so the page stays cheap however deep the queue grows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.models import Organization, OutboxEmail, Task, TaskStatus


@dataclass(frozen=True)
class QueueDepth:
    queued: int
    oldest_created_at: datetime | None
    # The earliest time a queued task could have been dispatched, among those due now: how
    # long ago it was is the dispatcher's lag (a retry waiting for its backoff is not late).
    oldest_due_at: datetime | None
    due: int


@dataclass(frozen=True)
class OutboxBacklog:
    pending: int
    oldest_pending_at: datetime | None
    given_up: int


class QueueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def depth(self, now: datetime) -> QueueDepth:
        queued = Task.status == TaskStatus.queued
        total, oldest = (
            await self.session.execute(
                select(func.count(), func.min(Task.created_at)).where(queued)
            )
        ).one()
        due, oldest_due = (
            await self.session.execute(
                select(func.count(), func.min(Task.run_after)).where(queued, Task.run_after <= now)
            )
        ).one()
        return QueueDepth(int(total), oldest, oldest_due, int(due))

    async def by_organization(self, most: int = 20) -> Sequence[tuple[uuid.UUID, str, int]]:
        """(organization, name, queued tasks), deepest first."""
        count = func.count(Task.id)
        rows = await self.session.execute(
            select(Task.organization_id, Organization.name, count)
            .join(Organization, Organization.id == Task.organization_id)
            .where(Task.status == TaskStatus.queued)
            .group_by(Task.organization_id, Organization.name)
            .order_by(count.desc(), Task.organization_id)
            .limit(most)
        )
        return [(id, name, int(n)) for id, name, n in rows.all()]

    async def by_organization_and_type(
        self, most: int = 100
    ) -> Sequence[tuple[uuid.UUID, str, int]]:
        """(organization, task type, queued tasks), deepest first: the metrics' breakdown."""
        count = func.count(Task.id)
        rows = await self.session.execute(
            select(Task.organization_id, Task.type, count)
            .where(Task.status == TaskStatus.queued)
            .group_by(Task.organization_id, Task.type)
            .order_by(count.desc(), Task.organization_id, Task.type)
            .limit(most)
        )
        return [(id, task_type, int(n)) for id, task_type, n in rows.all()]

    async def by_type(self, most: int = 20) -> Sequence[tuple[str, int]]:
        count = func.count(Task.id)
        rows = await self.session.execute(
            select(Task.type, count)
            .where(Task.status == TaskStatus.queued)
            .group_by(Task.type)
            .order_by(count.desc(), Task.type)
            .limit(most)
        )
        return [(task_type, int(n)) for task_type, n in rows.all()]

    async def live(self) -> int:
        count = await self.session.scalar(
            select(func.count()).where(Task.status.in_((TaskStatus.dispatched, TaskStatus.running)))
        )
        return int(count or 0)

    async def outbox(self) -> OutboxBacklog:
        unsent = OutboxEmail.sent_at.is_(None)
        pending, oldest = (
            await self.session.execute(
                select(func.count(), func.min(OutboxEmail.created_at)).where(
                    unsent, OutboxEmail.next_attempt_at.is_not(None)
                )
            )
        ).one()
        given_up = await self.session.scalar(
            select(func.count()).where(unsent, OutboxEmail.next_attempt_at.is_(None))
        )
        return OutboxBacklog(int(pending), oldest, int(given_up or 0))
