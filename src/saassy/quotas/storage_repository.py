"""SQL of storage accounting: the level recounted from artifact rows, the daily GB-month rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.models import Artifact, AttemptStatus, QuotaCounter, StorageUsageDay, TaskAttempt

STORAGE = "storage_kib"  # the storage quota's counter metric
LEVEL = date(1970, 1, 1)  # its one and only period: storage is a level, not a flow
LIVE_ATTEMPT = (AttemptStatus.dispatched, AttemptStatus.running)


class StorageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def levels(self) -> Sequence[tuple[uuid.UUID, int]]:
        """(organization, KiB counted) of every organization whose storage was ever counted."""
        rows = await self.session.execute(
            select(QuotaCounter.organization_id, QuotaCounter.used).where(
                QuotaCounter.metric == STORAGE, QuotaCounter.period_start == LEVEL
            )
        )
        return [(organization_id, used) for organization_id, used in rows.all()]

    async def recount(self, organization_id: uuid.UUID) -> None:
        """Set the counter to what the artifact rows hold, unless an attempt is live: a crash
        between taking and writing the rows would otherwise leave the difference counted
        forever, while a live attempt may hold a taking whose rows are not written yet."""
        held = (
            select(func.coalesce(func.sum((Artifact.size_bytes + 1023) // 1024), 0))
            .where(Artifact.organization_id == organization_id)
            .scalar_subquery()
        )
        live = exists().where(
            TaskAttempt.organization_id == organization_id, TaskAttempt.status.in_(LIVE_ATTEMPT)
        )
        await self.session.execute(
            update(QuotaCounter)
            .where(
                and_(
                    QuotaCounter.organization_id == organization_id,
                    QuotaCounter.metric == STORAGE,
                    QuotaCounter.period_start == LEVEL,
                ),
                ~live,
            )
            .values(used=held)
            .execution_options(synchronize_session=False)
        )

    async def record_day(
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

    async def gb_months(self, organization_id: uuid.UUID, start: date, end: date) -> float:
        """GB-months recorded for days in [start, end)."""
        total = await self.session.scalar(
            select(func.sum(StorageUsageDay.gb_months)).where(
                StorageUsageDay.organization_id == organization_id,
                StorageUsageDay.day >= start,
                StorageUsageDay.day < end,
            )
        )
        return float(total or 0.0)
