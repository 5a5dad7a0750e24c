"""Reconciliation: for each organization and meter of a month, the ledger's overage, what our
reports hold, and what Stripe's meter event summaries say, with the differences.

For the windows closed so far every difference must be 0. Reports still being sent (pending)
explain a gap between the ledger and Stripe for a while; reports Stripe refused or that were
too old to send (not billable) never close it, nor anything else: those alert staff.

A month's late usage carried over into the next month's windows (usage_reports) is billed by a
report of this month whose event Stripe holds in the next: Stripe's figure for a month's usage
is its meter event summaries over the month, less what was carried in from the month before,
plus what was carried out to the next.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import stripe
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.ledger_repository import BillingLedgerRepository
from saassy.billing.meters import METERS, MeterKey
from saassy.billing.overage import OverageRule, overage_rules
from saassy.billing.report_repository import MeterReportRepository
from saassy.billing.windows import last_closed, month_bounds
from saassy.kit.errors import ValidationFailed
from saassy.models import MeterReport, MeterReportStatus
from saassy.plans.catalog import Catalog
from saassy.plans.service import effective_plan

_PERIOD = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
# Stripe's times are Unix timestamps, and a month's end is the next month's start.
EARLIEST_PERIOD = date(1970, 1, 1)
LATEST_PERIOD = date(9999, 11, 1)


def parse_period(text: str) -> date:
    """'YYYY-MM' (ASCII digits) as the month's first day, from 1970-01 to 9999-11."""
    match = _PERIOD.fullmatch(text)
    if match is None or not EARLIEST_PERIOD.year <= int(match[1]) <= LATEST_PERIOD.year:
        raise _invalid_period()
    month = date(int(match[1]), int(match[2]), 1)
    if month > LATEST_PERIOD:
        raise _invalid_period()
    return month


def _invalid_period() -> ValidationFailed:
    return ValidationFailed(
        f"The period is a month written YYYY-MM. From {EARLIEST_PERIOD:%Y-%m} to "
        f"{LATEST_PERIOD:%Y-%m}.",
        code="invalid_period",
        field="period",
    )


@dataclass
class MeterLine:
    organization_id: uuid.UUID
    organization: str
    meter: MeterKey
    stripe_customer_id: str
    ledger: int  # event units: tasks, or thousandths of a compute unit
    reported: int = 0  # our reports Stripe accepted
    pending: int = 0  # our reports still being sent
    not_billable: int = 0  # our reports Stripe refused, or too old to send
    carried_in: int = 0  # the previous month's late usage Stripe holds in this month
    carried_out: int = 0  # this month's late usage Stripe holds in the next month
    stripe: int | None = None  # Stripe's figure for the month's usage; None: unreadable

    @property
    def ledger_minus_reported(self) -> int:
        return self.ledger - self.reported

    @property
    def ledger_minus_stripe(self) -> int | None:
        return None if self.stripe is None else self.ledger - self.stripe

    @property
    def reported_minus_stripe(self) -> int | None:
        return None if self.stripe is None else self.reported - self.stripe

    @property
    def settled(self) -> bool:
        """Nothing missing or extra at Stripe, nothing refused, nothing in flight."""
        return (
            self.stripe is not None
            and self.ledger == self.stripe == self.reported
            and (self.pending == 0 and self.not_billable == 0)
        )

    @property
    def alarming(self) -> bool:
        """A difference that waiting for the sender will not close."""
        if self.not_billable or self.stripe is None:
            return True
        return self.ledger != self.stripe + self.pending or self.reported != self.stripe


@dataclass
class Reconciliation:
    period: date
    closed_until: datetime  # the end of the last window closed when it was made
    lines: list[MeterLine] = field(default_factory=list)

    @property
    def settled(self) -> bool:
        return all(line.settled for line in self.lines)

    @property
    def alarming(self) -> list[MeterLine]:
        return [line for line in self.lines if line.alarming]


async def reconcile(
    session: AsyncSession,
    catalog: Catalog,
    client: stripe.StripeClient | None,
    period: date,
    window_s: int,
    now: datetime,
) -> Reconciliation:
    """The month's figures for every organization with a Stripe customer."""
    month_from, month_to = month_bounds(period)
    closed_until = min(last_closed(now, timedelta(seconds=window_s)).end, month_to)
    result = Reconciliation(period, closed_until)
    if closed_until <= month_from:
        return result
    ledger = BillingLedgerRepository(session)
    reports = await MeterReportRepository(session).period_reports(period)
    for customer, organization in await MeterReportRepository(session).customers():
        rules = {r.meter: r for r in overage_rules(effective_plan(catalog, organization))}
        reported_meters = {
            MeterKey(r.meter) for r in reports if r.organization_id == organization.id
        }
        for meter in MeterKey:
            if meter not in rules and meter not in reported_meters:
                continue
            rule = rules.get(meter) or OverageRule(meter, 0)
            usage = await ledger.cumulative(organization.id, meter, month_from, closed_until)
            line = MeterLine(
                organization.id,
                organization.name,
                meter,
                customer.stripe_customer_id,
                rule.billable(usage) if meter in rules else 0,
            )
            for report in reports:
                if report.organization_id == organization.id and report.meter == meter.value:
                    _count(line, report, period)
            result.lines.append(line)
    if client is not None and result.lines:
        await _stripe_totals(client, result, month_from)
    return result


def _count(line: MeterLine, report: MeterReport, period: date) -> None:
    value, sent = int(report.value), report.status == MeterReportStatus.sent
    if report.usage_period != period:  # the month before's, carried into this one
        line.carried_in += value if sent else 0
        return
    if report.period_start != period:
        line.carried_out += value if sent else 0
    if sent:
        line.reported += value
    elif report.status == MeterReportStatus.pending:
        line.pending += value
    else:
        line.not_billable += value


async def _stripe_totals(
    client: stripe.StripeClient, result: Reconciliation, month_from: datetime
) -> None:
    """Each line's sum of meter events in [month start, closed_until), from Stripe."""
    meters: dict[str, str] = {}
    listed = await client.v1.billing.meters.list_async({"status": "active", "limit": 100})
    async for meter in listed.auto_paging_iter():
        meters[meter.event_name] = meter.id
    for line in result.lines:
        meter_id = meters.get(METERS[line.meter].event_name)
        if meter_id is None:
            continue
        summaries = await client.v1.billing.meters.event_summaries.list_async(
            meter_id,
            {
                "customer": line.stripe_customer_id,
                "start_time": int(month_from.timestamp()),
                "end_time": int(result.closed_until.timestamp()),
                "limit": 100,
            },
        )
        total = Decimal(0)
        async for summary in summaries.auto_paging_iter():
            total += Decimal(str(summary.aggregated_value))
        line.stripe = int(total) - line.carried_in + line.carried_out
