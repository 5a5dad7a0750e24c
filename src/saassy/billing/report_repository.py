"""SQL for the meter-report outbox: what a month already reported, claiming due reports, and
recording what Stripe answered."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, or_, select, update

from saassy.billing.meters import MeterKey
from saassy.kit.repository import RepositoryBase
from saassy.kit.time import as_utc
from saassy.models import BillingCustomer, MeterReport, MeterReportStatus, Organization


@dataclass(frozen=True)
class MonthReported:
    total: int  # every report's value, whatever its status: what was decided to bill
    last_window: datetime | None  # the month's own last reported window
    carried_into: frozenset[datetime] = frozenset()  # next month's windows holding a carry-over


class MeterReportRepository(RepositoryBase[MeterReport]):
    model = MeterReport

    async def lock_customer(self, organization_id: uuid.UUID) -> BillingCustomer | None:
        """The organization's customer row, locked: one report builder per organization."""
        statement = (
            select(BillingCustomer)
            .where(BillingCustomer.organization_id == organization_id)
            .with_for_update()
        )
        customer: BillingCustomer | None = await self.session.scalar(statement)
        return customer

    async def customer_organizations(self) -> list[uuid.UUID]:
        rows = await self.session.scalars(select(BillingCustomer.organization_id))
        return list(rows)

    async def customers(self) -> list[tuple[BillingCustomer, Organization]]:
        """Every Stripe customer with its organization, by organization name."""
        rows = await self.session.execute(
            select(BillingCustomer, Organization)
            .join(Organization, Organization.id == BillingCustomer.organization_id)
            .order_by(Organization.name, Organization.id)
        )
        return [(customer, organization) for customer, organization in rows]

    async def month_reported(
        self, organization_id: uuid.UUID, meter: MeterKey, period: date
    ) -> MonthReported:
        """What was reported of the month's usage: in its own windows and carried over."""
        rows = await self.session.execute(
            select(MeterReport.value, MeterReport.window_start, MeterReport.period_start).where(
                MeterReport.organization_id == organization_id,
                MeterReport.meter == meter.value,
                MeterReport.usage_period == period,
            )
        )
        total, last, carried = 0, None, set()
        for value, start, window_period in rows:
            total += int(value)
            start = as_utc(start)
            if window_period != period:
                carried.add(start)
            elif last is None or start > last:
                last = start
        return MonthReported(total, last, frozenset(carried))

    async def period_reports(self, period: date) -> Sequence[MeterReport]:
        """The reports billing the month's usage, and those its windows carry from the last."""
        return await self.all(
            self.select().where(
                or_(MeterReport.usage_period == period, MeterReport.period_start == period)
            )
        )

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> Sequence[MeterReport]:
        """Take up to `limit` due reports for `lease`, counting the attempt (as the e-mail
        outbox claims: SKIP LOCKED on PostgreSQL, SQLite's single writer elsewhere)."""
        due = await self.all(
            self.select()
            .where(
                MeterReport.status == MeterReportStatus.pending,
                MeterReport.next_attempt_at <= now,
            )
            .order_by(MeterReport.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        for report in due:
            report.attempts += 1
            report.next_attempt_at = now + lease
        await self.session.flush()
        return due

    async def next_due(self) -> datetime | None:
        """When the earliest pending report is due."""
        due: datetime | None = await self.session.scalar(
            select(func.min(MeterReport.next_attempt_at)).where(
                MeterReport.status == MeterReportStatus.pending
            )
        )
        return as_utc(due) if due is not None else None

    async def mark_sent(self, report_id: uuid.UUID, now: datetime, note: str | None) -> None:
        await self._pending(report_id, status=MeterReportStatus.sent, sent_at=now, last_error=note)

    async def mark_retry(self, report_id: uuid.UUID, error: str, retry_at: datetime) -> None:
        await self._pending(report_id, last_error=error, next_attempt_at=retry_at)

    async def mark_failed(self, report_id: uuid.UUID, error: str) -> None:
        await self._pending(report_id, status=MeterReportStatus.failed, last_error=error)

    async def _pending(self, report_id: uuid.UUID, **values: object) -> None:
        # A report another sender already settled keeps what it was settled with.
        await self.session.execute(
            update(MeterReport)
            .where(MeterReport.id == report_id, MeterReport.status == MeterReportStatus.pending)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
