"""Tenant-scoped reads of tasks' logs and artifacts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select, tuple_

from saassy.auth.principal import OrganizationScope
from saassy.kit.pagination import PageParams, keyset
from saassy.kit.repository import RepositoryBase
from saassy.models import Artifact, Task, TaskLogChunk


class TaskOutputRepository(RepositoryBase[Task]):
    model = Task

    async def task(self, scope: OrganizationScope, task_id: uuid.UUID) -> Task | None:
        if not scope.ids:
            return None
        statement = select(Task).where(Task.id == task_id, Task.organization_id.in_(scope.ids))
        return await self.one_or_none(statement)

    async def status(self, task_id: uuid.UUID) -> Task | None:
        return await self.one_or_none(select(Task).where(Task.id == task_id))

    async def log_chunks(
        self,
        task_id: uuid.UUID,
        *,
        attempt: int | None = None,
        after: tuple[int, int] = (0, 0),
        limit: int = 10_000,
    ) -> Sequence[TaskLogChunk]:
        """Chunks in order (attempt, seq), strictly after `after` = (attempt, seq)."""
        statement = select(TaskLogChunk).where(
            TaskLogChunk.task_id == task_id,
            tuple_(TaskLogChunk.attempt_number, TaskLogChunk.seq) > tuple_(*after),
        )
        if attempt is not None:
            statement = statement.where(TaskLogChunk.attempt_number == attempt)
        statement = statement.order_by(TaskLogChunk.attempt_number, TaskLogChunk.seq).limit(limit)
        return (await self.session.execute(statement)).scalars().all()

    async def artifacts(self, task_id: uuid.UUID, params: PageParams) -> Sequence[Artifact]:
        """One page of the task's artifacts (and one more row, to tell whether more follow)."""
        statement = keyset(
            select(Artifact).where(Artifact.task_id == task_id),
            params,
            Artifact.created_at,
            Artifact.id,
        )
        return (await self.session.execute(statement)).scalars().all()

    async def artifact(self, task_id: uuid.UUID, artifact_id: uuid.UUID) -> Artifact | None:
        statement = select(Artifact).where(Artifact.task_id == task_id, Artifact.id == artifact_id)
        found: Artifact | None = (await self.session.execute(statement)).scalar()
        return found
