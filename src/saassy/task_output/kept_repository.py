"""SQL of the storage sweep: what is kept past retention, and which stored keys have rows."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.models import (
    Artifact,
    AttemptStatus,
    Organization,
    Task,
    TaskAttempt,
    TaskLogChunk,
)

LIVE_ATTEMPT = (AttemptStatus.dispatched, AttemptStatus.running)


@dataclass(frozen=True)
class ExpiredArtifact:
    id: uuid.UUID
    storage_key: str
    size_bytes: int


@dataclass(frozen=True)
class OrganizationPlan:
    id: uuid.UUID
    plan: str
    plan_overrides: dict[str, Any] | None


class KeptOutputRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def organization_plans(self) -> Sequence[OrganizationPlan]:
        rows = await self.session.execute(
            select(Organization.id, Organization.plan, Organization.plan_overrides)
        )
        return [OrganizationPlan(*row) for row in rows.all()]

    async def expired_artifacts(
        self, organization_id: uuid.UUID, ended_before: datetime, limit: int
    ) -> Sequence[ExpiredArtifact]:
        """Artifacts of the organization's tasks that ended before `ended_before`."""
        rows = await self.session.execute(
            select(Artifact.id, Artifact.storage_key, Artifact.size_bytes)
            .join(Task, Task.id == Artifact.task_id)
            .where(
                Artifact.organization_id == organization_id,
                Task.organization_id == organization_id,
                Task.finished_at < ended_before,
            )
            .limit(limit)
        )
        return [ExpiredArtifact(*row) for row in rows.all()]

    async def delete_artifacts(self, ids: Collection[uuid.UUID]) -> None:
        await self.session.execute(delete(Artifact).where(Artifact.id.in_(ids)))

    async def delete_expired_logs(self, organization_id: uuid.UUID, ended_before: datetime) -> int:
        ended = select(Task.id).where(
            Task.organization_id == organization_id, Task.finished_at < ended_before
        )
        result = await self.session.execute(
            delete(TaskLogChunk).where(
                TaskLogChunk.organization_id == organization_id, TaskLogChunk.task_id.in_(ended)
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def keys_with_rows(self, keys: Collection[str]) -> set[str]:
        rows = await self.session.execute(
            select(Artifact.storage_key).where(Artifact.storage_key.in_(keys))
        )
        return set(rows.scalars())

    async def live_attempts(
        self, attempts: Collection[tuple[uuid.UUID, int]]
    ) -> set[tuple[uuid.UUID, int]]:
        rows = await self.session.execute(
            select(TaskAttempt.task_id, TaskAttempt.number).where(
                tuple_(TaskAttempt.task_id, TaskAttempt.number).in_(list(attempts)),
                TaskAttempt.status.in_(LIVE_ATTEMPT),
            )
        )
        return {(task_id, number) for task_id, number in rows.all()}
