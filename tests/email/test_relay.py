"""The outbox relay: dev console, retries with backoff, one delivery with several relays."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import smtplib
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

import httpx
import pytest
from sqlalchemy import update

from saassy.config import Settings
from saassy.context import AppContext
from saassy.email.outbox import queue_email
from saassy.email.relay import MAX_ATTEMPTS, deliver_pending_emails, retry_delay, run_email_relay
from saassy.kit.time import utcnow
from saassy.models import OutboxEmail
from tests.email.mail import magic_token, make_due, rows

SECRET_LINE = "your code is 7r0ub4d0ur"


class Mailbox:
    """A sender that keeps what it is given, failing on demand."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.failure = failure
        self.received = asyncio.Event()

    async def send(self, message: EmailMessage) -> None:
        await asyncio.sleep(0)  # let concurrent relays interleave
        if self.failure is not None:
            raise self.failure
        self.messages.append(message)
        self.received.set()


async def queue(ctx: AppContext, *addresses: str, body: str = SECRET_LINE) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        for to in addresses:
            await queue_email(session, ctx.settings, to=to, subject="Hello", body=body)


async def test_without_smtp_the_message_is_printed_and_marked_sent(
    client: httpx.AsyncClient, ctx: AppContext, capsys: pytest.CaptureFixture[str]
) -> None:
    await client.post("/api/v1/auth/magic-link", json={"email": "dev@example.com"})
    assert await deliver_pending_emails(ctx) == 1

    printed = capsys.readouterr().out
    assert "To: dev@example.com" in printed
    assert "Subject: Your sign-in link for Saassy" in printed
    token = magic_token(printed)
    verify = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert verify.status_code == 200
    (row,) = await rows(ctx)
    assert row.sent_at is not None
    assert row.next_attempt_at is None
    assert row.attempts == 1
    assert await deliver_pending_emails(ctx) == 0


async def test_bodies_are_sealed_at_rest(ctx: AppContext) -> None:
    await queue(ctx, "a@example.com")
    (row,) = await rows(ctx)
    assert SECRET_LINE not in row.body


async def test_a_failure_is_retried_later_without_logging_the_body(
    ctx: AppContext, capsys: pytest.CaptureFixture[str]
) -> None:
    await queue(ctx, "a@example.com")
    before = utcnow()
    failing = Mailbox(ConnectionRefusedError("connection refused by 127.0.0.1:1"))
    assert await deliver_pending_emails(ctx, sender=failing) == 0

    (row,) = await rows(ctx)
    assert row.sent_at is None
    assert row.attempts == 1
    assert row.last_error == "ConnectionRefusedError: connection refused by 127.0.0.1:1"
    assert row.next_attempt_at is not None
    assert row.next_attempt_at >= before + retry_delay(1)
    assert SECRET_LINE not in capsys.readouterr().out
    # Not due yet: nothing happens.
    assert await deliver_pending_emails(ctx, sender=Mailbox()) == 0

    await make_due(ctx)
    mailbox = Mailbox()
    assert await deliver_pending_emails(ctx, sender=mailbox) == 1
    assert [m.get_content().strip() for m in mailbox.messages] == [SECRET_LINE]
    (row,) = await rows(ctx)
    assert (row.attempts, row.last_error) == (2, None)
    assert row.sent_at is not None


async def test_a_refused_recipient_is_not_named_in_the_log(
    ctx: AppContext, capsys: pytest.CaptureFixture[str]
) -> None:
    await queue(ctx, "Refused.Person@example.com")
    refused = smtplib.SMTPRecipientsRefused(
        {"Refused.Person@example.com": (550, b"5.1.1 <refused.person@example.com>: unknown")}
    )
    assert await deliver_pending_emails(ctx, sender=Mailbox(refused)) == 0

    logged = capsys.readouterr().out
    assert "e-mail delivery failed" in logged
    assert "refused.person" not in logged.lower()
    assert "<recipient>" in logged
    (row,) = await rows(ctx)  # the row keeps the reply; it goes when the account is deleted
    assert row.last_error is not None
    assert "refused.person@example.com" in row.last_error


async def test_the_backoff_grows_and_the_relay_gives_up(ctx: AppContext) -> None:
    assert retry_delay(1) < retry_delay(2) < retry_delay(3) <= retry_delay(100)
    assert retry_delay(100) == timedelta(hours=6)

    await queue(ctx, "a@example.com")
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(OutboxEmail).values(attempts=MAX_ATTEMPTS - 1))
    await deliver_pending_emails(ctx, sender=Mailbox(OSError("still down")))
    (row,) = await rows(ctx)
    assert row.attempts == MAX_ATTEMPTS
    assert row.next_attempt_at is None
    assert row.sent_at is None


async def test_a_body_sealed_with_another_secret_is_given_up(
    ctx: AppContext, settings_factory: Callable[..., Settings]
) -> None:
    other = dataclasses.replace(
        ctx, settings=settings_factory(secret_key=secrets.token_urlsafe(48))
    )
    await queue(other, "a@example.com")
    mailbox = Mailbox()
    assert await deliver_pending_emails(ctx, sender=mailbox) == 0
    (row,) = await rows(ctx)
    assert mailbox.messages == []
    assert row.next_attempt_at is None
    assert row.last_error is not None
    assert "SAASSY_SECRET_KEY" in row.last_error


async def test_concurrent_relays_deliver_each_message_once(ctx: AppContext) -> None:
    addresses = [f"user{n:03}@example.com" for n in range(120)]
    await queue(ctx, *addresses)
    mailbox = Mailbox()

    sent = await asyncio.gather(*(deliver_pending_emails(ctx, sender=mailbox) for _ in range(4)))

    assert sum(sent) == len(addresses)
    assert sorted(str(m["To"]) for m in mailbox.messages) == addresses
    assert all(row.sent_at is not None for row in await rows(ctx))


async def test_the_relay_loop_wakes_up_after_a_commit_that_queued_mail(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    mailbox = Mailbox()
    relay = asyncio.create_task(run_email_relay(ctx, poll_interval_s=3600, sender=mailbox))
    try:
        await asyncio.sleep(0)  # the relay's first round finds nothing, then waits for a wake-up
        response = await client.post("/api/v1/auth/magic-link", json={"email": "wake@example.com"})
        assert response.status_code == 202
        async with asyncio.timeout(10):
            await mailbox.received.wait()
        assert [str(m["To"]) for m in mailbox.messages] == ["wake@example.com"]
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
