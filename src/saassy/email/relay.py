"""Delivers the e-mail outbox: SMTP when configured, else printed to the console.

Safe with several relays at once: each claims due messages for a lease before sending, so two
relays never hold the same message together; a relay that dies mid-send leaves a lease that runs
out and the message goes again (at least once). Failures retry with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import structlog

from saassy.context import AppContext
from saassy.email.outbox import outbox_sealer
from saassy.email.repository import OutboxEmailRepository
from saassy.email.senders import EmailSender, build_message, sender_for
from saassy.kit.db_outage import OutageWatch, is_database_outage
from saassy.kit.time import utcnow

log = structlog.get_logger(__name__)

POLL_INTERVAL_S = 5.0
BATCH_SIZE = 50
CLAIM_LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=6)


def retry_delay(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min ... capped at 6 h."""
    delay: timedelta = FIRST_RETRY * 2 ** min(max(0, attempts - 1), 20)
    return min(delay, LAST_RETRY)


def _describe(exc: Exception) -> str:
    # Only the exception's type and text (an SMTP reply, a socket error): never the message body.
    return f"{type(exc).__name__}: {exc}"[:1000]


def without_recipient(error: str, to: str) -> str:
    """The error for the log: an SMTP reply often quotes the recipient, and a log line is no
    place for an address (ids only: the outbox row keeps the whole reply until it is deleted)."""
    return re.sub(re.escape(to), "<recipient>", error, flags=re.IGNORECASE)


async def deliver_pending_emails(ctx: AppContext, *, sender: EmailSender | None = None) -> int:
    """Send every due message once; returns how many were sent."""
    sender = sender or sender_for(ctx.settings)
    sent = 0
    while True:
        async with ctx.sessionmaker() as session, session.begin():
            claimed = [
                _Claimed(email.id, email.to_address, email.subject, email.body, email.attempts)
                for email in await OutboxEmailRepository(session).claim_due(
                    utcnow(), CLAIM_LEASE, BATCH_SIZE
                )
            ]
        for email in claimed:
            sent += await _deliver(ctx, sender, email)
        if len(claimed) < BATCH_SIZE:
            return sent


@dataclass(frozen=True)
class _Claimed:
    id: uuid.UUID
    to: str
    subject: str
    sealed_body: str
    attempts: int


async def _deliver(ctx: AppContext, sender: EmailSender, email: _Claimed) -> int:
    error: str | None = None
    retry = email.attempts < MAX_ATTEMPTS
    try:
        body = outbox_sealer(ctx.settings).open(email.sealed_body)
    except ValueError:
        error, retry = "the body cannot be opened: was SAASSY_SECRET_KEY changed?", False
    else:
        message = build_message(ctx.settings, to=email.to, subject=email.subject, body=body)
        try:
            await sender.send(message)
        except Exception as exc:  # any failure to send is retried, never fatal
            error = _describe(exc)
    retry_at = utcnow() + retry_delay(email.attempts) if error and retry else None
    async with ctx.sessionmaker() as session, session.begin():
        outbox = OutboxEmailRepository(session)
        if error is None:
            await outbox.mark_sent(email.id, utcnow())
            return 1
        await outbox.mark_failed(email.id, error, retry_at)
    log.warning(
        "e-mail delivery failed",
        email_id=str(email.id),
        attempts=email.attempts,
        error=without_recipient(error, email.to),
        retry_at=retry_at.isoformat() if retry_at else None,
    )
    return 0


async def run_email_relay(
    ctx: AppContext,
    *,
    poll_interval_s: float = POLL_INTERVAL_S,
    sender: EmailSender | None = None,
) -> None:
    """Deliver on every wake-up (a commit that queued mail) and every `poll_interval_s`."""
    outage = OutageWatch("e-mail relay")
    while True:
        ctx.outbox_wakeup.clear()
        try:
            await deliver_pending_emails(ctx, sender=sender)
            outage.succeeded()
        except Exception as exc:  # try again on the next round
            if is_database_outage(exc):
                outage.failed(exc)  # one line per outage
            else:
                log.exception("e-mail relay round failed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(poll_interval_s):
                await ctx.outbox_wakeup.wait()
