"""The meter-reporting loop: write the reports of closed windows, send the due ones, and once a
day reconcile the month and alert staff to differences. Runs beside the e-mail relay (`saassy
api`/`dev`, `saassy scheduler`) when billing is on, and as `saassy billing report-usage`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import stripe
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.billing.alerts import alert_staff, describe
from saassy.billing.meter_events import SendRound, send_due_reports
from saassy.billing.pace import Pace
from saassy.billing.reconciliation import Reconciliation, reconcile
from saassy.billing.report_repository import MeterReportRepository
from saassy.billing.stripe_api import billing_enabled
from saassy.billing.stripe_connection import open_stripe_client
from saassy.billing.usage_reports import build_meter_reports
from saassy.billing.windows import last_closed
from saassy.config import Settings
from saassy.kit.background import BackgroundLoop
from saassy.kit.db_outage import OutageWatch, is_database_outage
from saassy.kit.time import month_start, utcnow

log = structlog.get_logger(__name__)

POLL_INTERVAL_S = 10.0
MIN_WAIT_S = 0.2


@dataclass
class UsageRound:
    written: int
    sending: SendRound


async def report_usage(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: stripe.StripeClient,
    pace: Pace | None = None,
    now: datetime | None = None,
    *,
    build: bool = True,
) -> UsageRound:
    """One pass: reports for every closed window (unless `build` is false), then every due
    report sent once."""
    written = 0
    if build:
        written = await build_meter_reports(
            sessionmaker, settings.catalog, settings.billing_window_s, now or utcnow()
        )
    sending = await send_due_reports(sessionmaker, client, settings.billing_window_s, pace)
    return UsageRound(written, sending)


async def reconcile_and_alert(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: stripe.StripeClient | None,
    period: date,
    now: datetime | None = None,
    *,
    alert: bool = True,
) -> Reconciliation:
    """Reconcile `period`; a difference that waiting will not close is logged and (with
    `alert`) e-mailed to staff."""
    now = now or utcnow()
    async with sessionmaker() as session, session.begin():
        result = await reconcile(
            session, settings.catalog, client, period, settings.billing_window_s, now
        )
        for line in result.alarming:
            log.error("billing does not reconcile", period=f"{period:%Y-%m}", line=describe(line))
        if result.alarming and alert:
            await alert_staff(session, settings, result, now.date())
    return result


async def run_meter_reporting(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: stripe.StripeClient,
    *,
    poll_interval_s: float = POLL_INTERVAL_S,
    reconcile_daily: bool = True,
    on_round: Callable[[UsageRound], None] | None = None,
) -> None:
    """Report, send and (daily) reconcile until cancelled; `on_round` is told each round."""
    outage = OutageWatch("meter reporting")
    pace = Pace()
    length = timedelta(seconds=settings.billing_window_s)
    reconciled_on: date | None = None
    built_for: datetime | None = None
    while True:
        wait_s = poll_interval_s
        try:
            # Reports are built once per window that closes (and at start): between two, the
            # ledger's new usage waits for the next window anyway, so only sending runs.
            closing = last_closed(utcnow(), length).start
            done = await report_usage(
                sessionmaker, settings, client, pace, build=closing != built_for
            )
            built_for = closing
            if on_round is not None:
                on_round(done)
            wait_s = await _until_next_due(sessionmaker, poll_interval_s)
            today = utcnow().date()
            if reconcile_daily and reconciled_on != today:
                for period in _periods_to_reconcile(utcnow()):
                    await reconcile_and_alert(sessionmaker, settings, client, period)
                reconciled_on = today
            outage.succeeded()
        except Exception as exc:  # try again on the next round
            if is_database_outage(exc):
                wait_s = outage.failed(exc)
            else:
                log.exception("meter reporting round failed")
        await asyncio.sleep(wait_s)


async def _until_next_due(sessionmaker: async_sessionmaker[AsyncSession], most_s: float) -> float:
    """Sleep until the earliest pending report is due, at most `most_s`."""
    async with sessionmaker() as session:
        due = await MeterReportRepository(session).next_due()
    if due is None:
        return most_s
    return min(most_s, max(MIN_WAIT_S, (due - utcnow()).total_seconds()))


def _periods_to_reconcile(now: datetime) -> list[date]:
    """This month, and on the first days of a month the one that just ended."""
    this = month_start(now)
    if now.day <= 3:
        return [month_start(datetime(this.year, this.month, 1) - timedelta(days=1)), this]
    return [this]


def meter_reporting_loop(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> BackgroundLoop | None:
    """The loop to start beside the e-mail relay; None when billing is off."""
    if not billing_enabled(settings):
        return None

    async def run() -> None:
        async with open_stripe_client(settings) as client:
            assert client is not None  # billing is on
            await run_meter_reporting(sessionmaker, settings, client)

    return BackgroundLoop(run, "meter reporting")
