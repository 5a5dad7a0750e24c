"""SQL of the storage sweep: what is kept past retention, which keys have rows, storage levels."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.models import (
    Artifact,
    AttemptStatus,
    Organization,
    QuotaCounter,
    StorageUsageDay,
    Task,
    TaskAttempt,
    TaskLogChunk,
)
from saassy.quotas.storage import LEVEL, STORAGE

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

    async def storage_levels(self) -> Sequence[tuple[uuid.UUID, int]]:
        """(organization, KiB stored) of every organization whose storage was ever counted."""
        rows = await self.session.execute(
            select(QuotaCounter.organization_id, QuotaCounter.used).where(
                QuotaCounter.metric == STORAGE, QuotaCounter.period_start == LEVEL
            )
        )
        return [(organization_id, used) for organization_id, used in rows.all()]

    async def record_storage_day(
        self,
        organization_id: uuid.UUID,
        day: date,
        stored_kib: int,
        gb_months: float,
        now: datetime,
    ) -> None:
        """Insert the day's row unless one exists: a day is counted once, whoever sweeps."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        await self.session.execute(
            insert(StorageUsageDay)
            .values(
                id=uuid.uuid4(),
                created_at=now,
                organization_id=organization_id,
                day=day,
                stored_kib=stored_kib,
                gb_months=gb_months,
            )
            .on_conflict_do_nothing(index_elements=["organization_id", "day"])
        )
