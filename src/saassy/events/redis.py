"""The event bus across processes: Redis pub/sub, one channel per organization.

Each process holds two Redis connections whatever its number of followers: one that publishes
(a sender task, so a slow or absent Redis never holds up the task engine) and one that listens
to every organization's channel with a single pattern subscription, fanning out to local
subscribers through an in-process bus. Events published here reach local subscribers directly
and are skipped when Redis echoes them back.

Delivery stays best effort, as the interface says: while Redis is away, events are dropped (and
logged once per outage), never raised into the engine; followers replay from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from saassy.events.bus import EventBus, EventKind, EventWatcher, Subscription, TaskEvent
from saassy.events.memory import MAX_PENDING, MemoryEventBus

log = structlog.get_logger(__name__)

WIRE_VERSION = 1
# Events waiting for the sender; past this, new ones are dropped rather than held in memory.
MAX_OUTGOING = 10_000
MAX_BATCH = 500
RECONNECT_FIRST_S = 0.1
RECONNECT_MAX_S = 5.0
# On close, how long the sender may take to hand over what is still queued.
FLUSH_ON_CLOSE_S = 2.0
CONNECT_TIMEOUT_S = 2.0
# A listener that hears nothing pings this often, so a silently dead connection is noticed.
HEALTH_CHECK_S = 15


class WireEvent(BaseModel):
    """What travels on a channel; anything else found there is dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]
    # The publishing bus: it delivered locally already and skips its own echo.
    source: str = Field(max_length=64)
    kind: EventKind
    task_id: uuid.UUID
    data: dict[str, Any]


def channel_pattern(prefix: str) -> str:
    return f"{prefix}:events:*"


def channel_for(prefix: str, organization_id: uuid.UUID) -> str:
    return f"{prefix}:events:{organization_id}"


class Backoff:
    """Doubling waits between reconnection attempts, capped; reset once connected."""

    def __init__(self, first_s: float = RECONNECT_FIRST_S, max_s: float = RECONNECT_MAX_S) -> None:
        self._first_s, self._max_s = first_s, max_s
        self._next_s = first_s

    def next(self) -> float:
        wait, self._next_s = self._next_s, min(self._next_s * 2, self._max_s)
        return wait

    def reset(self) -> None:
        self._next_s = self._first_s


class RedisEventBus(EventBus):
    """Organizations' events across every process sharing `url` and `prefix`."""

    name = "redis"
    spans_processes = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "saassy",
        max_pending: int = MAX_PENDING,
        max_outgoing: int = MAX_OUTGOING,
    ) -> None:
        self._prefix = prefix
        self._source = uuid.uuid4().hex
        self._local = MemoryEventBus(max_pending)
        # Named, so `CLIENT LIST` shows whose connections these are.
        options: dict[str, Any] = {
            "socket_connect_timeout": CONNECT_TIMEOUT_S,
            "health_check_interval": HEALTH_CHECK_S,
            "client_name": f"{prefix}-events",
        }
        # One immediate retry on a fresh connection: the pooled one may have died with a
        # Redis restart since the last publish.
        self._publisher: Redis = Redis.from_url(url, retry=Retry(NoBackoff(), 1), **options)
        # None inside redis-py for the listener: its loop reconnects, backs off and says so.
        self._subscriber: Redis = Redis.from_url(url, retry=Retry(NoBackoff(), 0), **options)
        self._outgoing: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(max_outgoing)
        self._listener: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closed = False
        self._publish_failing = False
        self.dropped_outgoing = 0
        self.malformed = 0
        # Times the listener has (re)subscribed: 1 once started, more after reconnections.
        self.connections = 0
        self.listener_failures = 0

    async def start(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Subscribe to every organization's channel; wait up to `timeout_s` for Redis to
        confirm. Without Redis the process still starts: the listener keeps trying."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="event bus listener")
            self._sender = asyncio.create_task(self._send(), name="event bus sender")
        try:
            async with asyncio.timeout(timeout_s):
                await self._listening.wait()
        except TimeoutError:
            log.warning("events.redis_not_connected_yet", retrying=True)

    def describe(self) -> str:
        return "redis" if self._listening.is_set() else "redis (reconnecting)"

    async def publish(self, organization_id: uuid.UUID, event: TaskEvent) -> None:
        await self._local.publish(organization_id, event)
        if self._closed:
            return
        wire = {
            "v": WIRE_VERSION,
            "source": self._source,
            "kind": event.kind,
            "task_id": str(event.task_id),
            "data": event.data,
        }
        try:
            payload = json.dumps(wire, separators=(",", ":")).encode()
        except (TypeError, ValueError):  # not JSON-ready: local subscribers had it, Redis won't
            log.exception("events.unencodable_event_dropped", kind=event.kind)
            return
        try:
            self._outgoing.put_nowait((channel_for(self._prefix, organization_id), payload))
        except asyncio.QueueFull:
            self.dropped_outgoing += 1  # the sender is stuck on Redis and says so

    def subscribe(self, organization_id: uuid.UUID) -> Subscription:
        # Local and synchronous: the pattern subscription already covers every organization.
        return self._local.subscribe(organization_id)

    def watch(self, watcher: EventWatcher) -> None:
        self._local.watch(watcher)  # what this process publishes, and what the listener hears

    def subscriber_count(self, organization_id: uuid.UUID) -> int:
        return self._local.subscriber_count(organization_id)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._sender is not None:
            if not self._publish_failing:
                # The last statuses of an engine that stops are worth a moment.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FLUSH_ON_CLOSE_S):
                        await self._outgoing.join()
            self._sender.cancel()
        if self._listener is not None:
            self._listener.cancel()
        tasks = [task for task in (self._sender, self._listener) if task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._local.close()
        await self._publisher.aclose()
        await self._subscriber.aclose()

    async def _send(self) -> None:
        backoff = Backoff()
        while True:
            batch = [await self._outgoing.get()]
            while len(batch) < MAX_BATCH and not self._outgoing.empty():
                batch.append(self._outgoing.get_nowait())
            try:
                async with self._publisher.pipeline(transaction=False) as pipe:
                    for channel, payload in batch:
                        pipe.publish(channel, payload)
                    await pipe.execute()
            except Exception as exc:  # whatever it is, the sender must go on
                self.dropped_outgoing += len(batch)
                if not self._publish_failing:
                    self._publish_failing = True
                    say_failed(exc, "events.redis_publish_failed")
                await asyncio.sleep(backoff.next())
                continue
            finally:
                for _ in batch:
                    self._outgoing.task_done()
            if self._publish_failing:
                self._publish_failing = False
                log.info("events.redis_publish_restored", dropped_so_far=self.dropped_outgoing)
            backoff.reset()

    async def _listen(self) -> None:
        backoff = Backoff()
        lost = False
        while True:
            pubsub = self._subscriber.pubsub()
            try:
                await pubsub.psubscribe(channel_pattern(self._prefix))
                while True:
                    message = await pubsub.get_message(timeout=HEALTH_CHECK_S)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":
                        self.connections += 1
                        self._listening.set()
                        backoff.reset()
                        if lost:
                            lost = False
                            log.info("events.redis_listener_reconnected")
                    elif message["type"] == "pmessage":
                        await self._deliver(message["channel"], message["data"])
            except Exception as exc:  # whatever it is, the listener must go on
                self._listening.clear()
                self.listener_failures += 1
                if not lost:
                    lost = True
                    say_failed(exc, "events.redis_listener_lost")
            finally:
                await asyncio.shield(_quietly_close(pubsub))
            await asyncio.sleep(backoff.next())

    async def _deliver(self, channel: bytes, payload: bytes) -> None:
        organization = channel.decode(errors="replace").rpartition(":")[2]
        try:
            organization_id = uuid.UUID(organization)
            wire = WireEvent.model_validate_json(payload)
        except (ValueError, ValidationError):
            self.malformed += 1
            log.warning(
                "events.malformed_message_dropped",
                channel=channel[:200].decode(errors="replace"),
                size=len(payload),
            )
            return
        if wire.source == self._source:
            return  # delivered locally when published
        event = TaskEvent(wire.kind, wire.task_id, wire.data)
        await self._local.publish(organization_id, event)


def say_failed(exc: Exception, event: str) -> None:
    """Redis going away is expected and said in one line; anything else is a bug: traceback."""
    if isinstance(exc, RedisError | OSError):
        log.warning(event, error=type(exc).__name__)
    else:
        log.error(event, exc_info=exc)


async def _quietly_close(pubsub: PubSub) -> None:
    with contextlib.suppress(RedisError, OSError):  # the connection is gone already
        await pubsub.aclose()  # type: ignore[no-untyped-call]
