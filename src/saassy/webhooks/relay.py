"""Delivers the webhook outbox: signed POSTs, retried on a schedule, every attempt logged.

Like the e-mail relay, several may run at once: each claims due messages for a lease before
sending, so two never send the same attempt together; a relay that dies mid-send leaves a lease
that runs out, and the message goes again with the same `webhook-id` (at least once: receivers
deduplicate on it). A 2xx answer delivers the message; anything else (another status, a
timeout, a refused address) is a failed attempt, retried after the next delay of the schedule
with jitter, until the schedule ends (~28 h). When a message fails for good and its endpoint has
not accepted anything for `disable_after` (5 days), the endpoint is disabled and its owners get
an e-mail.

Slow receivers hold only their own deliveries: each attempt has a total deadline, attempts run
side by side up to a total, and at most a few at once go to one endpoint and to one
organization, so one tenant's slow endpoints cannot take every slot. The relay never waits for
a batch to finish: a slot that frees is filled with the next due message.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

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
    WebhookMessage,
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
# Tasks end in bursts (a drain ends tens a second), each waking the relay: one round per burst
# reads what they queued, where a round per task end cost a transaction each.
ROUND_GAP_S = 0.1
BATCH_SIZE = 50
# Attempts in flight in one relay: in all, to one organization, to one endpoint.
CONCURRENCY = 16
ORGANIZATION_CONCURRENCY = 4
ENDPOINT_CONCURRENCY = 2
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
    timeout_s: float = 15.0  # for all of an attempt, from resolving the name to the answer
    # Longer than an attempt may take, so a live relay's claim never runs out mid-send.
    claim_lease: timedelta = timedelta(minutes=2)
    concurrency: int = CONCURRENCY
    organization_concurrency: int = ORGANIZATION_CONCURRENCY
    endpoint_concurrency: int = ENDPOINT_CONCURRENCY

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


class Deliveries:
    """The attempts one relay has in flight, and the limits on starting more."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        client: httpx.AsyncClient,
        policy: DeliveryPolicy,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.client = client
        self.policy = policy
        self.done = RelayRound()
        self.in_flight: dict[asyncio.Task[None], ClaimedMessage] = {}
        self.by_organization: Counter[uuid.UUID] = Counter()
        self.by_endpoint: Counter[uuid.UUID] = Counter()
        self.ended = 0  # attempts ended so far: each frees a slot

    def _busy(self, counts: Counter[uuid.UUID], limit: int) -> list[uuid.UUID]:
        return [key for key, count in counts.items() if count >= limit]

    async def start_due(self, due_by: datetime) -> int:
        """Claim and start the messages due by `due_by` that free slots allow; how many."""
        started = 0
        while (free := self.policy.concurrency - len(self.in_flight)) > 0:
            batch = await self._claim(due_by, free)
            for message in batch:
                self._start(message)
            started += len(batch)
            if not batch:
                return started
        return started

    async def _claim(self, due_by: datetime, free: int) -> list[ClaimedMessage]:
        policy = self.policy
        organizations, endpoints = self.by_organization.copy(), self.by_endpoint.copy()
        async with self.sessionmaker() as session, session.begin():
            messages = WebhookMessageRepository(session)
            due = await messages.due(
                due_by,
                BATCH_SIZE,
                skip_organizations=self._busy(organizations, policy.organization_concurrency),
                skip_endpoints=self._busy(endpoints, policy.endpoint_concurrency),
            )
            picked: list[tuple[WebhookMessage, WebhookEndpoint]] = []
            for message, endpoint in due:
                if len(picked) == free:
                    break
                if (
                    organizations[message.organization_id] < policy.organization_concurrency
                    and endpoints[endpoint.id] < policy.endpoint_concurrency
                ):
                    organizations[message.organization_id] += 1
                    endpoints[endpoint.id] += 1
                    picked.append((message, endpoint))
            # The rest stay due; their locks end with this transaction.
            return await messages.claim(picked, utcnow(), policy.claim_lease)

    def _start(self, message: ClaimedMessage) -> None:
        self.by_organization[message.organization_id] += 1
        self.by_endpoint[message.endpoint_id] += 1
        task = asyncio.create_task(self._attempt(message))
        self.in_flight[task] = message
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        message = self.in_flight.pop(task)
        self.ended += 1
        for counts, key in (
            (self.by_organization, message.organization_id),
            (self.by_endpoint, message.endpoint_id),
        ):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]

    async def _attempt(self, message: ClaimedMessage) -> None:
        try:
            result = await _send(self.settings, self.client, self.policy, message)
            await _record(self.sessionmaker, self.settings, self.policy, message, result, self.done)
        except Exception:  # its claim runs out and it goes again
            log.exception("webhook attempt not recorded", message_id=str(message.id))

    async def wait(
        self, wakeup: asyncio.Event | None = None, at_most_s: float | None = None
    ) -> None:
        """Until an attempt ends (a slot frees), `wakeup` is set, or `at_most_s` passes."""
        waiting: set[asyncio.Future[Any]] = set(self.in_flight)
        woken = asyncio.ensure_future(wakeup.wait()) if wakeup is not None else None
        if woken is not None:
            waiting.add(woken)
        try:
            if waiting:
                await asyncio.wait(waiting, timeout=at_most_s, return_when=asyncio.FIRST_COMPLETED)
            elif at_most_s is not None:
                await asyncio.sleep(at_most_s)
        finally:
            if woken is not None:
                woken.cancel()

    async def stop(self) -> None:
        """Cancel what is in flight: those messages' claims run out and they go again."""
        for task in list(self.in_flight):
            task.cancel()
        await asyncio.gather(*self.in_flight, return_exceptions=True)


async def deliver_pending_webhooks(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: httpx.AsyncClient,
    policy: DeliveryPolicy | None = None,
) -> RelayRound:
    """Make one attempt at every message due now, within the relay's limits."""
    deliveries = Deliveries(sessionmaker, settings, client, policy or DeliveryPolicy())
    due_by = utcnow()  # a retry this round schedules waits for a later round
    try:
        while True:
            await deliveries.start_due(due_by)
            if not deliveries.in_flight:
                return deliveries.done
            await deliveries.wait()
    finally:
        await deliveries.stop()


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
    round_gap_s: float = ROUND_GAP_S,
    policy: DeliveryPolicy | None = None,
) -> None:
    """Start due messages every time an attempt ends, and on every wake-up (a commit that
    queued messages) and every `poll_interval_s`, those at most one round per `round_gap_s`;
    never wait for one attempt to start another."""
    outage = OutageWatch("webhook relay")
    loop = asyncio.get_running_loop()
    async with new_client() as client:
        deliveries = Deliveries(sessionmaker, settings, client, policy or DeliveryPolicy())
        try:
            while True:
                wakeup.clear()
                began = loop.time()
                try:
                    await deliveries.start_due(utcnow())
                    outage.succeeded()
                except Exception as exc:  # try again on the next round
                    if is_database_outage(exc):
                        outage.failed(exc)
                    else:
                        log.exception("webhook relay round failed")
                ended = deliveries.ended
                await deliveries.wait(wakeup, poll_interval_s)
                if deliveries.ended == ended:  # no slot freed: gather the burst of wake-ups
                    await asyncio.sleep(began + round_gap_s - loop.time())
        finally:
            await deliveries.stop()


def wake_on_task_end(wakeup: asyncio.Event, organization_id: uuid.UUID, event: TaskEvent) -> None:
    """A task ended (committed, maybe with webhook messages): deliver now, not at the poll."""
    if event.kind == "task.status" and event.data.get("status") in ENDED:
        wakeup.set()


def webhook_relay_loop(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    wakeup: asyncio.Event,
    events: EventBus,
    *,
    every_task_end: bool,
) -> BackgroundLoop:
    """The relay as `saassy dev`/`api` and `saassy scheduler` run it. With `every_task_end`,
    each task's end heard on `events` wakes it: where outcomes are committed by processes that
    cannot hand it what they queued (`saassy worker`s, other API processes on a shared bus).
    Otherwise only `wakeup` does, set by this process's commits that queued messages (its
    engine's too: `EngineServices.after_commit`), so a task that queued none costs no round."""
    if every_task_end:
        events.watch(partial(wake_on_task_end, wakeup))
    return BackgroundLoop(
        partial(run_webhook_relay, sessionmaker, settings, wakeup), name="webhook relay"
    )
