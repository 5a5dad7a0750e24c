"""SQL over the usage ledger for billing: a month's cumulative usage of each meter.

Tasks count once their monthly reservation is settled (the task ran and ended), in the month
of its `closed_at`: a task admitted on a month's last evening and ending after midnight is
billed with the month it ended in (as its compute units are), never lost between the two.
Compute counts each attempt's reserved memory at its `recorded_at`.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ColumnElement, and_, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.meters import MeterKey
from saassy.billing.overage import MICRO, micro
from saassy.kit.time import as_utc
from saassy.metering.metrics import MEMORY_GB_SECONDS
from saassy.models import QuotaReservation, ReservationStatus, UsageRecord
from saassy.quotas.periods import TASKS

Increment = tuple[datetime, int]


class BillingLedgerRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def cumulative(
        self,
        organization_id: uuid.UUID,
        meter: MeterKey,
        since: datetime,
        before: datetime,
    ) -> int:
        """The month's usage counted in [since, before): tasks, or micro-GB-seconds."""
        if meter is MeterKey.tasks:
            amount = func.coalesce(QuotaReservation.settled_amount, QuotaReservation.amount)
            statement = select(func.coalesce(func.sum(amount), 0)).where(
                self._settled_tasks(organization_id),
                QuotaReservation.closed_at >= since,
                QuotaReservation.closed_at < before,
            )
        else:
            scaled = cast(func.round(UsageRecord.quantity * MICRO), BigInteger)
            statement = select(func.coalesce(func.sum(scaled), 0)).where(
                self._memory(organization_id),
                UsageRecord.recorded_at >= since,
                UsageRecord.recorded_at < before,
            )
        return int(await self.session.scalar(statement) or 0)

    async def increments(
        self,
        organization_id: uuid.UUID,
        meter: MeterKey,
        since: datetime,
        before: datetime,
    ) -> list[Increment]:
        """Each counted usage in [since, before) with its time, oldest first."""
        if meter is MeterKey.tasks:
            amount = func.coalesce(QuotaReservation.settled_amount, QuotaReservation.amount)
            settled = await self.session.execute(
                select(QuotaReservation.closed_at, amount).where(
                    self._settled_tasks(organization_id),
                    QuotaReservation.closed_at >= since,
                    QuotaReservation.closed_at < before,
                )
            )
            found = [(as_utc(at), int(n)) for at, n in settled if at is not None]
        else:
            recorded = await self.session.execute(
                select(UsageRecord.recorded_at, UsageRecord.quantity).where(
                    self._memory(organization_id),
                    UsageRecord.recorded_at >= since,
                    UsageRecord.recorded_at < before,
                )
            )
            found = [(as_utc(at), micro(q)) for at, q in recorded]
        return sorted(found)

    @staticmethod
    def _settled_tasks(organization_id: uuid.UUID) -> ColumnElement[bool]:
        return and_(
            QuotaReservation.organization_id == organization_id,
            QuotaReservation.metric == TASKS,
            QuotaReservation.status == ReservationStatus.settled,
        )

    @staticmethod
    def _memory(organization_id: uuid.UUID) -> ColumnElement[bool]:
        return and_(
            UsageRecord.organization_id == organization_id,
            UsageRecord.metric == MEMORY_GB_SECONDS,
        )
