"""Sends the meter-report outbox to Stripe's meter events, after commit, never in a task's path.

Like the e-mail relay: several senders may run at once, each claiming due reports for a lease
before sending; a sender killed mid-send leaves a lease that runs out, and the report goes
again with the same identifier and value. Stripe's answers decide what happens to a report:

- accepted, or 400 "an event already exists with identifier": sent (a retry of a report
  Stripe already holds is how a lost answer looks);
- 429: retried after Retry-After (or the backoff), and the whole sender slows down;
- 5xx, a connection error, 401/403 (the key): retried with exponential backoff and jitter
  until the window is too old for Stripe (35 days), then failed;
- any other 400/404 (no such customer or meter, timestamp too old): failed, not retried; the
  error is kept on the report and reconciliation shows its value as not billable.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import stripe
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.billing.meters import CUSTOMER_KEY, METERS, VALUE_KEY, MeterKey
from saassy.billing.pace import Pace
from saassy.billing.report_repository import MeterReportRepository
from saassy.billing.windows import SENDABLE_AGE
from saassy.kit.time import as_utc, utcnow

log = structlog.get_logger(__name__)

BATCH_SIZE = 100
# Short: a sender that outlives it only makes another send the same report again, which
# Stripe answers as a duplicate; a killed sender's reports go again this soon.
CLAIM_LEASE = timedelta(seconds=10)
FIRST_RETRY = timedelta(seconds=1)
LAST_RETRY = timedelta(minutes=10)
DUPLICATE = "An event already exists with identifier"


class Verdict(StrEnum):
    sent = "sent"
    retry = "retry"
    failed = "failed"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    note: str | None = None
    rate_limited: bool = False
    retry_after_s: float | None = None  # Stripe's Retry-After, when it gave one


@dataclass(frozen=True)
class _Claimed:
    id: uuid.UUID
    meter: MeterKey
    identifier: str
    value: str
    customer: str
    window_start: datetime
    attempts: int


@dataclass
class SendRound:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def retry_delay(attempts: int) -> timedelta:
    """1 s, 2 s, 4 s ... capped at 10 min, each drawn down by up to half (jitter)."""
    delay: timedelta = min(FIRST_RETRY * 2 ** min(max(0, attempts - 1), 20), LAST_RETRY)
    jittered: timedelta = delay * random.uniform(0.5, 1.0)  # noqa: S311 - spreading retries
    return jittered


def rate_limited_delay(retry_after_s: float | None) -> timedelta:
    """Stripe's Retry-After, else a second, stretched by up to half (jitter). A 429 says the
    sender went too fast, not that the report is at fault: it does not grow the backoff."""
    base = timedelta(seconds=retry_after_s if retry_after_s is not None else 1.0)
    stretched: timedelta = base * random.uniform(1.0, 1.5)  # noqa: S311 - spreading retries
    return stretched


def judge(exc: Exception) -> Outcome:
    """What a failed call means for the report."""
    text = f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, stripe.RateLimitError):
        return Outcome(Verdict.retry, text, rate_limited=True, retry_after_s=_retry_after(exc))
    if isinstance(exc, stripe.StripeError):
        status = exc.http_status or 0
        if status == 400 and (exc.code == "duplicate_meter_event" or DUPLICATE in str(exc)):
            return Outcome(Verdict.sent, "already at Stripe")
        if status in (400, 404):
            return Outcome(Verdict.failed, text)
    return Outcome(Verdict.retry, text)  # 5xx, connection, key: none is the report's fault


def _retry_after(exc: stripe.StripeError) -> float | None:
    raw = (exc.headers or {}).get("Retry-After") if exc.headers else None
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


async def send_due_reports(
    sessionmaker: async_sessionmaker[AsyncSession],
    client: stripe.StripeClient,
    window_s: int,
    pace: Pace | None = None,
) -> SendRound:
    """Send every due report once; what each answer means is recorded batch by batch."""
    pace = pace or Pace()
    done = SendRound()
    while True:
        async with sessionmaker() as session, session.begin():
            claimed = [
                _Claimed(
                    r.id,
                    MeterKey(r.meter),
                    r.identifier,
                    r.value,
                    r.stripe_customer_id,
                    as_utc(r.window_start),
                    r.attempts,
                )
                for r in await MeterReportRepository(session).claim_due(
                    utcnow(), CLAIM_LEASE, BATCH_SIZE
                )
            ]
        if not claimed:
            return done
        length = timedelta(seconds=window_s)
        # Stripe takes one call at a time per customer and meter.
        turns: defaultdict[tuple[str, MeterKey], asyncio.Lock] = defaultdict(asyncio.Lock)
        outcomes = await asyncio.gather(
            *(_send(client, pace, turns[r.customer, r.meter], r, length) for r in claimed)
        )
        await _record(sessionmaker, claimed, outcomes, done)
        if len(claimed) < BATCH_SIZE:
            return done


async def _send(
    client: stripe.StripeClient,
    pace: Pace,
    turn: asyncio.Lock,
    report: _Claimed,
    length: timedelta,
) -> Outcome:
    end = report.window_start + length
    if utcnow() - end >= SENDABLE_AGE:
        return Outcome(Verdict.failed, "older than Stripe accepts (35 days): not billable")
    timestamp = int(min(end - timedelta(seconds=1), utcnow()).timestamp())
    async with turn, pace.call():
        try:
            await client.v1.billing.meter_events.create_async(
                {
                    "event_name": METERS[report.meter].event_name,
                    "identifier": report.identifier,
                    "timestamp": timestamp,
                    "payload": {CUSTOMER_KEY: report.customer, VALUE_KEY: report.value},
                }
            )
        except Exception as exc:  # every failure is judged; none stops the sender
            outcome = judge(exc)
        else:
            outcome = Outcome(Verdict.sent)
    if outcome.rate_limited:
        pace.rate_limited(outcome.retry_after_s)
    elif outcome.verdict is Verdict.sent:
        pace.accepted()
    return outcome


async def _record(
    sessionmaker: async_sessionmaker[AsyncSession],
    claimed: list[_Claimed],
    outcomes: list[Outcome],
    done: SendRound,
) -> None:
    now = utcnow()
    retry_error: str | None = None
    async with sessionmaker() as session, session.begin():
        reports = MeterReportRepository(session)
        for report, outcome in zip(claimed, outcomes, strict=True):
            if outcome.verdict is Verdict.sent:
                await reports.mark_sent(report.id, now, outcome.note)
                done.sent += 1
            elif outcome.verdict is Verdict.failed:
                await reports.mark_failed(report.id, outcome.note or "refused")
                done.failed += 1
                log.error(
                    "meter report refused by Stripe",
                    identifier=report.identifier,
                    error=outcome.note,
                )
            else:
                delay = (
                    rate_limited_delay(outcome.retry_after_s)
                    if outcome.rate_limited
                    else retry_delay(report.attempts)
                )
                await reports.mark_retry(report.id, outcome.note or "retry", now + delay)
                done.retried += 1
                retry_error = outcome.note
    if retry_error is not None:
        log.warning("meter reports to retry", batch=len(claimed), last_error=retry_error)
