"""Reads of the usage ledger: what an organization's tasks used, per task type and metric."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.models import UsageRecord


@dataclass(frozen=True)
class MeteredTotal:
    task_type: str
    metric: str
    total: float
    largest: float
    tasks: int


class UsageLedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def totals(
        self, organization_id: uuid.UUID, start: datetime, end: datetime
    ) -> Sequence[MeteredTotal]:
        """Sum and maximum per task type and metric of what was recorded in [start, end)."""
        rows = await self.session.execute(
            select(
                UsageRecord.task_type,
                UsageRecord.metric,
                func.sum(UsageRecord.quantity),
                func.max(UsageRecord.quantity),
                func.count(func.distinct(UsageRecord.task_id)),
            )
            .where(
                UsageRecord.organization_id == organization_id,
                UsageRecord.recorded_at >= start,
                UsageRecord.recorded_at < end,
            )
            .group_by(UsageRecord.task_type, UsageRecord.metric)
            .order_by(UsageRecord.task_type, UsageRecord.metric)
        )
        return [
            MeteredTotal(task_type, metric, float(total or 0), float(largest or 0), int(tasks))
            for task_type, metric, total, largest, tasks in rows.all()
        ]

    async def total_of(
        self, organization_id: uuid.UUID, metric: str, start: datetime, end: datetime
    ) -> float:
        """The sum of one metric over the organization's attempts recorded in [start, end)."""
        total = await self.session.scalar(
            select(func.sum(UsageRecord.quantity)).where(
                UsageRecord.organization_id == organization_id,
                UsageRecord.metric == metric,
                UsageRecord.recorded_at >= start,
                UsageRecord.recorded_at < end,
            )
        )
        return float(total or 0)
