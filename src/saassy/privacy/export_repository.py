"""SQL of data exports: the requests themselves, and the rows an archive is built from."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.kit.repository import RepositoryBase
from saassy.models import (
    Artifact,
    DataExport,
    ExportStatus,
    Membership,
    Role,
    TaskLogChunk,
    User,
)

UNFINISHED = (ExportStatus.queued, ExportStatus.running)


class DataExportRepository(RepositoryBase[DataExport]):
    model = DataExport

    async def of_user(self, export_id: uuid.UUID, user_id: uuid.UUID) -> DataExport | None:
        """The export if `user_id` requested it; None for anyone else's (a 404)."""
        return await self.one_or_none(
            select(DataExport).where(DataExport.id == export_id, DataExport.user_id == user_id)
        )

    async def recent(
        self, user_id: uuid.UUID, organization_id: uuid.UUID | None, limit: int
    ) -> Sequence[DataExport]:
        """The user's latest exports of their account (None) or of one organization."""
        which = (
            DataExport.organization_id.is_(None)
            if organization_id is None
            else DataExport.organization_id == organization_id
        )
        return await self.all(
            select(DataExport)
            .where(DataExport.user_id == user_id, which)
            .order_by(DataExport.created_at.desc(), DataExport.id.desc())
            .limit(limit)
        )

    async def requested_since(self, user_id: uuid.UUID, since: datetime) -> list[datetime]:
        """When the user requested each export since `since`, oldest first."""
        rows = await self.session.scalars(
            select(DataExport.created_at)
            .where(DataExport.user_id == user_id, DataExport.created_at >= since)
            .order_by(DataExport.created_at)
        )
        return list(rows)

    async def unfinished_of(self, user_id: uuid.UUID) -> DataExport | None:
        return await self.one_or_none(
            select(DataExport)
            .where(DataExport.user_id == user_id, DataExport.status.in_(UNFINISHED))
            .limit(1)
        )

    async def claim_next(self, now: datetime, stale_before: datetime) -> DataExport | None:
        """Take the oldest queued export, or one whose builder stopped before `stale_before`;
        the conditional update lets only one of several builders win it."""
        candidate = await self.session.scalar(
            select(DataExport.id)
            .where(
                or_(
                    DataExport.status == ExportStatus.queued,
                    (DataExport.status == ExportStatus.running)
                    & (DataExport.started_at < stale_before),
                )
            )
            .order_by(DataExport.created_at)
            .limit(1)
        )
        if candidate is None:
            return None
        claimed = await self.session.execute(
            update(DataExport)
            .where(
                DataExport.id == candidate,
                or_(
                    DataExport.status == ExportStatus.queued,
                    (DataExport.status == ExportStatus.running)
                    & (DataExport.started_at < stale_before),
                ),
            )
            .values(status=ExportStatus.running, started_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return await self.session.get(DataExport, candidate, populate_existing=True)

    async def finish(self, export_id: uuid.UUID, started_at: datetime, **values: Any) -> bool:
        """Record the outcome, if this builder's claim still holds (not taken over)."""
        result = await self.session.execute(
            update(DataExport)
            .where(
                DataExport.id == export_id,
                DataExport.status == ExportStatus.running,
                DataExport.started_at == started_at,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def due_to_expire(self, now: datetime, limit: int) -> Sequence[DataExport]:
        return await self.all(
            select(DataExport)
            .where(DataExport.status == ExportStatus.ready, DataExport.expires_at <= now)
            .limit(limit)
        )

    async def mark_expired(self, export_id: uuid.UUID) -> None:
        await self.session.execute(
            update(DataExport)
            .where(DataExport.id == export_id)
            .values(status=ExportStatus.expired, storage_key=None)
            .execution_options(synchronize_session=False)
        )


class ExportSourceRepository:
    """Reads what goes into an archive, a page at a time (each page its own short session)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def email_of(self, user_id: uuid.UUID) -> str | None:
        email: str | None = await self.session.scalar(select(User.email).where(User.id == user_id))
        return email

    async def owned_organizations(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        rows = await self.session.scalars(
            select(Membership.organization_id)
            .where(Membership.user_id == user_id, Membership.role == Role.owner)
            .order_by(Membership.organization_id)
        )
        return list(rows)

    async def rows_after(
        self,
        table: Table,
        columns: Sequence[str],
        where: ColumnElement[bool],
        after: uuid.UUID | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """Up to `limit` rows of `table` that `where` selects, by id after `after`."""
        statement = select(*(table.c[name] for name in columns)).where(where)
        if after is not None:
            statement = statement.where(table.c.id > after)
        result = await self.session.execute(statement.order_by(table.c.id).limit(limit))
        return [dict(row._mapping) for row in result]

    async def log_streams(
        self, organization_ids: Sequence[uuid.UUID]
    ) -> list[tuple[uuid.UUID, int, str]]:
        """Every (task, attempt, stream) with kept log lines."""
        if not organization_ids:
            return []
        result = await self.session.execute(
            select(TaskLogChunk.task_id, TaskLogChunk.attempt_number, TaskLogChunk.stream)
            .distinct()
            .where(TaskLogChunk.organization_id.in_(organization_ids))
            .order_by(TaskLogChunk.task_id, TaskLogChunk.attempt_number, TaskLogChunk.stream)
        )
        return [(row[0], row[1], row[2]) for row in result]

    async def log_chunks_after(
        self, task_id: uuid.UUID, attempt: int, stream: str, after_seq: int, limit: int
    ) -> list[tuple[int, str]]:
        result = await self.session.execute(
            select(TaskLogChunk.seq, TaskLogChunk.data)
            .where(
                TaskLogChunk.task_id == task_id,
                TaskLogChunk.attempt_number == attempt,
                TaskLogChunk.stream == stream,
                TaskLogChunk.seq > after_seq,
            )
            .order_by(TaskLogChunk.seq)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in result]

    async def artifacts_after(
        self, organization_ids: Sequence[uuid.UUID], after: uuid.UUID | None, limit: int
    ) -> Sequence[Artifact]:
        if not organization_ids:
            return []
        statement = select(Artifact).where(Artifact.organization_id.in_(organization_ids))
        if after is not None:
            statement = statement.where(Artifact.id > after)
        rows = await self.session.scalars(statement.order_by(Artifact.id).limit(limit))
        return rows.all()
