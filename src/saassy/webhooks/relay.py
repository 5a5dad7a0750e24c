"""Delivers the webhook outbox: signed POSTs, retried on a schedule, every attempt logged.

Like the e-mail relay, several may run at once: each claims due messages for a lease before
sending, so two never send the same attempt together; a relay that dies mid-send leaves a lease
that runs out, and the message goes again with the same `webhook-id` (at least once: receivers
deduplicate on it). A 2xx answer delivers the message; anything else (another status, a
timeout, a refused address) is a failed attempt, retried after the next delay of the schedule
with jitter, until the schedule ends (~28 h). When a message fails for good and its endpoint has
not accepted anything for `disable_after` (5 days), the endpoint is disabled and its owners get
an e-mail.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor
from saassy.audit.service import Target, record
from saassy.config import Settings
from saassy.email.outbox import queue_email
from saassy.events.bus import EventBus, TaskEvent
from saassy.kit.background import BackgroundLoop
from saassy.kit.db_outage import OutageWatch, is_database_outage
from saassy.kit.time import as_utc, utcnow
from saassy.models import (
    TERMINAL_STATUSES,
    Role,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessageStatus,
)
from saassy.notifications.kinds import NotificationKind, why_footer
from saassy.notifications.repository import PreferenceRepository
from saassy.webhooks.destination import DestinationRefused, parse_url
from saassy.webhooks.events import render_body
from saassy.webhooks.repository import (
    ClaimedMessage,
    WebhookEndpointRepository,
    WebhookMessageRepository,
)
from saassy.webhooks.sealing import secret_sealer
from saassy.webhooks.sending import AttemptResult, new_client, post_message
from saassy.webhooks.signing import delivery_headers

log = structlog.get_logger(__name__)

POLL_INTERVAL_S = 5.0
BATCH_SIZE = 50
CONCURRENCY = 10
# The delay after each failed attempt (Standard Webhooks' suggestion): 8 attempts over ~28 h.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
DISABLE_AFTER = timedelta(days=5)
ENDED = frozenset(status.value for status in TERMINAL_STATUSES)


@dataclass(frozen=True)
class DeliveryPolicy:
    """How the relay retries and when it gives up on an endpoint (tests shorten it)."""

    schedule: tuple[timedelta, ...] = RETRY_SCHEDULE
    jitter: float = 0.2  # each delay is stretched or shrunk by up to this fraction
    disable_after: timedelta = DISABLE_AFTER
    timeout_s: float = 15.0
    # Longer than an attempt may take, so a live relay's claim never runs out mid-send.
    claim_lease: timedelta = timedelta(minutes=2)
    concurrency: int = CONCURRENCY

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1

    def retry_delay(self, attempts: int) -> timedelta | None:
        """The wait after failed attempt number `attempts` of a round; None: no attempt is left."""
        if attempts > len(self.schedule):
            return None
        spread = random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311 - spreading retries
        delay: timedelta = self.schedule[attempts - 1] * spread
        return delay


@dataclass
class RelayRound:
    delivered: int = 0
    failed_attempts: int = 0
    disabled: list[str] = field(default_factory=list)


async def deliver_pending_webhooks(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: httpx.AsyncClient,
    policy: DeliveryPolicy | None = None,
) -> RelayRound:
    """Make one attempt at every due message."""
    policy = policy or DeliveryPolicy()
    done = RelayRound()
    turns = asyncio.Semaphore(policy.concurrency)
    while True:
        async with sessionmaker() as session, session.begin():
            claimed = await WebhookMessageRepository(session).claim_due(
                utcnow(), policy.claim_lease, BATCH_SIZE
            )
        if not claimed:
            return done

        async def attempt(message: ClaimedMessage) -> None:
            async with turns:
                result = await _send(settings, client, policy, message)
            await _record(sessionmaker, settings, policy, message, result, done)

        results = await asyncio.gather(
            *(attempt(message) for message in claimed), return_exceptions=True
        )
        for message, result in zip(claimed, results, strict=True):
            if isinstance(result, Exception):  # its claim runs out and it goes again
                log.error(
                    "webhook attempt not recorded", message_id=str(message.id), exc_info=result
                )
        if len(claimed) < BATCH_SIZE:
            return done


def _signing_secrets(settings: Settings, message: ClaimedMessage, now: datetime) -> list[str]:
    sealer = secret_sealer(settings)
    live = [sealer.open(message.secret)]
    expires = message.previous_secret_expires_at
    if message.previous_secret is not None and expires is not None and as_utc(expires) > now:
        live.append(sealer.open(message.previous_secret))
    return live


async def _send(
    settings: Settings, client: httpx.AsyncClient, policy: DeliveryPolicy, message: ClaimedMessage
) -> AttemptResult:
    now = utcnow()
    try:
        signing = _signing_secrets(settings, message, now)
    except ValueError:
        return AttemptResult(
            False, None, 0, "the endpoint's secret cannot be opened: rotate it", None
        )
    try:
        destination = parse_url(message.url)
    except DestinationRefused as exc:
        return AttemptResult(False, None, 0, f"refused: {exc}", None)
    body = render_body(message.event, settings.base_url)
    headers = delivery_headers(signing, f"msg_{message.id.hex}", int(now.timestamp()), body)
    return await post_message(
        client,
        destination,
        headers,
        body,
        allow_private=settings.webhooks_allow_private,
        timeout_s=policy.timeout_s,
    )


async def _record(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    policy: DeliveryPolicy,
    message: ClaimedMessage,
    result: AttemptResult,
    done: RelayRound,
) -> None:
    now = utcnow()
    async with sessionmaker() as session, session.begin():
        # Two relays recording attempts at one endpoint update its failure streak in turn; `NO
        # KEY UPDATE` leaves a task's end free to insert messages that refer to the endpoint.
        endpoint = await session.get(
            WebhookEndpoint, message.endpoint_id, with_for_update={"key_share": True}
        )
        if endpoint is None:
            return  # deleted meanwhile, with its messages
        session.add(
            WebhookAttempt(
                message_id=message.id,
                number=message.number,
                succeeded=result.succeeded,
                status_code=result.status_code,
                duration_ms=result.duration_ms,
                error=result.error,
                response_body=result.response_body,
            )
        )
        messages = WebhookMessageRepository(session)
        if result.succeeded:
            await messages.finish_attempt(
                message,
                status=WebhookMessageStatus.delivered,
                now=now,
                error=None,
                next_attempt_at=None,
            )
            endpoint.failing_since = None
            done.delivered += 1
            return
        done.failed_attempts += 1
        delay = policy.retry_delay(message.attempts)
        status = WebhookMessageStatus.pending if delay else WebhookMessageStatus.failed
        await messages.finish_attempt(
            message,
            status=status,
            now=now,
            error=result.error,
            next_attempt_at=now + delay if delay else None,
        )
        endpoint.failing_since = endpoint.failing_since or now
        if delay is None and as_utc(endpoint.failing_since) <= now - policy.disable_after:
            await _disable(session, settings, endpoint, policy, now)
            done.disabled.append(str(endpoint.id))
    log.info(
        "webhook attempt failed",
        message_id=str(message.id),
        attempt=message.number,
        error=result.error,
        gave_up=delay is None,
    )


async def _disable(
    session: AsyncSession,
    settings: Settings,
    endpoint: WebhookEndpoint,
    policy: DeliveryPolicy,
    now: datetime,
) -> None:
    days = policy.disable_after.total_seconds() / 86400
    reason = f"every delivery failed for {days:g} days"
    endpoints = WebhookEndpointRepository(session)
    if not await endpoints.disable_if_enabled(endpoint.id, reason, now):
        return
    await record(
        session,
        AuditAction.webhook_endpoint_disabled,
        Actor.nobody(),
        organization_id=endpoint.organization_id,
        target=Target(TargetType.webhook_endpoint, endpoint.id),
        details={"reason": reason},
    )
    body = (
        f"Saassy stopped sending webhooks to {endpoint.url}: {reason}.\n\n"
        "Fix the receiver, then enable the endpoint again (PATCH "
        f'/api/v1/webhooks/endpoints/{endpoint.id} with {{"enabled": true}}); failed messages '
        "can be sent again from the endpoint's delivery log.\n"
        + why_footer(
            settings.base_url,
            "you are an owner of the organization the endpoint belongs to",
            NotificationKind.webhook_disabled,
        )
    )
    owners = await PreferenceRepository(session).members_wanting(
        endpoint.organization_id, NotificationKind.webhook_disabled, (Role.owner,)
    )
    for owner in owners:
        await queue_email(
            session, settings, to=owner.email, subject="A webhook endpoint was disabled", body=body
        )
    log.warning("webhook endpoint disabled", endpoint_id=str(endpoint.id), reason=reason)


async def run_webhook_relay(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    wakeup: asyncio.Event,
    *,
    poll_interval_s: float = POLL_INTERVAL_S,
    policy: DeliveryPolicy | None = None,
) -> None:
    """Deliver on every wake-up (a commit that queued messages) and every `poll_interval_s`."""
    outage = OutageWatch("webhook relay")
    async with new_client() as client:
        while True:
            wakeup.clear()
            try:
                await deliver_pending_webhooks(sessionmaker, settings, client, policy)
                outage.succeeded()
            except Exception as exc:  # try again on the next round
                if is_database_outage(exc):
                    outage.failed(exc)
                else:
                    log.exception("webhook relay round failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_interval_s):
                    await wakeup.wait()


def wake_on_task_end(wakeup: asyncio.Event, organization_id: uuid.UUID, event: TaskEvent) -> None:
    """A task ended (committed, maybe with webhook messages): deliver now, not at the poll."""
    if event.kind == "task.status" and event.data.get("status") in ENDED:
        wakeup.set()


def webhook_relay_loop(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    wakeup: asyncio.Event,
    events: EventBus,
) -> BackgroundLoop:
    """The relay as `saassy dev`/`api` and `saassy scheduler` run it, woken by ended tasks."""
    events.watch(partial(wake_on_task_end, wakeup))
    return BackgroundLoop(
        partial(run_webhook_relay, sessionmaker, settings, wakeup), name="webhook relay"
    )
