"""Durable records of an attempt: usage (insert-or-ignore on its unique key), logs, artifacts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.dispatch import statements
from saassy.models import Artifact, TaskLogChunk, UsageRecord


@dataclass(frozen=True)
class Metered:
    metric: str
    quantity: float


@dataclass(frozen=True)
class LogChunk:
    seq: int
    stream: str
    data: str


class UsageLedger:
    """A (task, attempt, metric) is recorded once: a replay inserts nothing."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        *,
        organization_id: uuid.UUID,
        task_id: uuid.UUID,
        task_type: str,
        attempt_number: int,
        usage: Iterable[Metered],
        now: datetime,
    ) -> None:
        rows = [
            {
                "id": uuid.uuid4(),
                "created_at": now,
                "organization_id": organization_id,
                "task_id": task_id,
                "task_type": task_type,
                "attempt_number": attempt_number,
                "metric": item.metric,
                "quantity": item.quantity,
                "recorded_at": now,
            }
            for item in usage
        ]
        if not rows:
            return
        dialect = self.session.get_bind().dialect.name
        await self.session.execute(statements.record_usage(dialect), rows)

    async def of_task(self, task_id: uuid.UUID) -> Sequence[UsageRecord]:
        statement = (
            select(UsageRecord)
            .where(UsageRecord.task_id == task_id)
            .order_by(UsageRecord.attempt_number, UsageRecord.metric)
        )
        return (await self.session.execute(statement)).scalars().all()


class LogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def append(
        self,
        organization_id: uuid.UUID,
        task_id: uuid.UUID,
        attempt_number: int,
        chunks: Iterable[LogChunk],
    ) -> None:
        self.session.add_all(
            TaskLogChunk(
                organization_id=organization_id,
                task_id=task_id,
                attempt_number=attempt_number,
                seq=chunk.seq,
                stream=chunk.stream,
                data=chunk.data,
            )
            for chunk in chunks
        )
        await self.session.flush()

    async def last_seq(self, task_id: uuid.UUID, attempt_number: int) -> int:
        statement = select(func.max(TaskLogChunk.seq)).where(
            TaskLogChunk.task_id == task_id, TaskLogChunk.attempt_number == attempt_number
        )
        found: int | None = (await self.session.execute(statement)).scalar()
        return -1 if found is None else found


class ArtifactRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_all(self, artifacts: Iterable[Artifact]) -> None:
        self.session.add_all(artifacts)
        await self.session.flush()
