"""Meter reports from the ledger: one per (organization, meter, window) with overage in it.

Each report's value is cumulative and exact: the month's overage as the ledger shows it now
for everything counted before the window's end, minus what the month's earlier reports hold.
Usage that commits after its window was reported is in the ledger before the next window's
end, so it lands in the next report: never lost, never twice. A month's last window has no next
one in that month, and Stripe finalizes a month's invoice an hour after the month ends: from
half an hour after the end, what the month's reports do not hold yet is carried over into the
next month's current window, in a report of its own that bills the month it was used in. The
difference is computed with the organization's customer row locked, so two builders never both
write it (the unique (organization, meter, window, month billed) is the backstop).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.billing.ledger_repository import BillingLedgerRepository
from saassy.billing.overage import OverageRule, overage_rules
from saassy.billing.report_repository import MeterReportRepository
from saassy.billing.windows import Window, identifier, last_closed, month_bounds, windows_between
from saassy.kit.time import month_start
from saassy.models import MeterReport, MeterReportStatus, Organization
from saassy.plans.catalog import Catalog
from saassy.plans.service import effective_plan

log = structlog.get_logger(__name__)

# Stripe finalizes a month's invoice an hour after the month ends; until then usage timestamped
# in the month still reaches it. Later, a report needs the next month's invoice.
CARRY_OVER_AFTER = timedelta(minutes=30)


@dataclass(frozen=True)
class ReportScope:
    organization_id: uuid.UUID
    stripe_customer_id: str
    rule: OverageRule


async def build_meter_reports(
    sessionmaker: async_sessionmaker[AsyncSession], catalog: Catalog, window_s: int, now: datetime
) -> int:
    """Write the reports of every window closed by `now`; returns how many were written."""
    async with sessionmaker() as session:
        organizations = await MeterReportRepository(session).customer_organizations()
    written = 0
    for organization_id in organizations:
        try:
            async with sessionmaker() as session, session.begin():
                written += await build_organization_reports(
                    session, catalog, organization_id, timedelta(seconds=window_s), now
                )
        except IntegrityError:  # another builder wrote them first: they are the same rows
            log.info("meter reports already written", organization_id=str(organization_id))
    return written


async def build_organization_reports(
    session: AsyncSession,
    catalog: Catalog,
    organization_id: uuid.UUID,
    length: timedelta,
    now: datetime,
) -> int:
    """One organization's reports, under the lock of its customer row."""
    reports = MeterReportRepository(session)
    customer = await reports.lock_customer(organization_id)
    organization = await session.get(Organization, organization_id)
    if customer is None or organization is None:
        return 0
    last = last_closed(now, length)
    if now - month_bounds(last.period)[1] >= CARRY_OVER_AFTER:
        return 0  # its invoice is closing: usage waits for the next month's first window
    # The month of the last closed window, and the one before: its last windows, then late usage.
    previous = month_start(last.start.replace(day=1) - timedelta(days=1))
    written = 0
    for rule in overage_rules(effective_plan(catalog, organization)):
        scope = ReportScope(organization_id, customer.stripe_customer_id, rule)
        for period in (previous, last.period):
            written += await _build_month(session, scope, period, last, now)
    return written


async def _build_month(
    session: AsyncSession, scope: ReportScope, period: date, last: Window, now: datetime
) -> int:
    reports = MeterReportRepository(session)
    ledger = BillingLedgerRepository(session)
    meter = scope.rule.meter
    month_from, month_to = month_bounds(period)
    reported = await reports.month_reported(scope.organization_id, meter, period)
    if now - month_to >= CARRY_OVER_AFTER:  # too late for the month's own invoice
        if last.start in reported.carried_into:
            return 0  # one carry-over a window
        return await _carry_over(session, scope, period, last, reported.total, now)
    first = reported.last_window + last.length if reported.last_window else month_from
    final = last if last.period == period else Window(month_to - last.length, last.length)
    if first > final.start:
        return 0
    cumulative = await ledger.cumulative(scope.organization_id, meter, month_from, first)
    increments = await ledger.increments(scope.organization_id, meter, first, final.end)
    total, written, at = reported.total, 0, 0
    for window in windows_between(first, final):
        while at < len(increments) and increments[at][0] < window.end:
            cumulative += increments[at][1]
            at += 1
        due = scope.rule.billable(cumulative) - total
        if due <= 0:  # nothing new; a fall (the plan changed) is never reported back
            continue
        session.add(_report(scope, window, due, now))
        total += due
        written += 1
    await session.flush()
    return written


async def _carry_over(
    session: AsyncSession,
    scope: ReportScope,
    period: date,
    last: Window,
    total: int,
    now: datetime,
) -> int:
    """What a past month's reports do not hold yet, as one report in `last` (the next month's
    current window), whose event is timestamped there so that it reaches an open invoice."""
    month_from, month_to = month_bounds(period)
    usage = await BillingLedgerRepository(session).cumulative(
        scope.organization_id, scope.rule.meter, month_from, month_to
    )
    due = scope.rule.billable(usage) - total
    if due <= 0:
        return 0
    session.add(_report(scope, last, due, now, usage_period=period))
    await session.flush()
    log.info(
        "late usage carried over",
        organization_id=str(scope.organization_id),
        meter=scope.rule.meter.value,
        month=period.isoformat(),
        value=due,
    )
    return 1


def _report(
    scope: ReportScope,
    window: Window,
    value: int,
    now: datetime,
    *,
    usage_period: date | None = None,
) -> MeterReport:
    carried_from = usage_period if usage_period != window.period else None
    return MeterReport(
        organization_id=scope.organization_id,
        meter=scope.rule.meter.value,
        window_start=window.start,
        period_start=window.period,
        usage_period=usage_period or window.period,
        identifier=identifier(scope.organization_id, scope.rule.meter, window.start, carried_from),
        value=str(value),
        stripe_customer_id=scope.stripe_customer_id,
        status=MeterReportStatus.pending,
        next_attempt_at=now,
    )
