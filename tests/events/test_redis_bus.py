"""The Redis event bus against a real Redis: two buses stand for two processes.

Pub/sub channels are not per database number: every test takes its own channel prefix, so
runs sharing the server never hear each other.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis

from saassy.events import redis as redis_bus
from saassy.events.bus import SubscriptionClosed, TaskEvent
from saassy.events.redis import RedisEventBus, channel_for
from tests.events.support import RecordedLog
from tests.services import REDIS_URL, require

pytestmark = pytest.mark.redis

# Generous: a listener that reconnects waits at most 5 s between tries.
DELIVERY_S = 10.0

BusFactory = Callable[[], RedisEventBus]


def log_line(n: int, task_id: uuid.UUID | None = None) -> TaskEvent:
    data = {"attempt": 1, "seq": n, "stream": "stdout", "data": f"line {n}\n"}
    return TaskEvent("task.log", task_id or uuid.UUID(int=n), data)


@pytest.fixture
def prefix() -> str:
    redis = urlsplit(REDIS_URL)
    require("Redis", redis.hostname or "127.0.0.1", redis.port or 6379)
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def raw_redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def bus_factory(prefix: str) -> AsyncIterator[BusFactory]:
    """Started buses on the test's prefix, closed at the end."""
    buses: list[RedisEventBus] = []

    def make() -> RedisEventBus:
        bus = RedisEventBus(REDIS_URL, prefix=prefix)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.close()


async def until(condition: Callable[[], bool]) -> None:
    """Wait for what the bus reaches by itself (a reconnection, failed tries)."""
    for _ in range(int(DELIVERY_S / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    assert condition()


async def started(factory: BusFactory) -> RedisEventBus:
    bus = factory()
    await bus.start()
    assert bus.describe() == "redis"
    return bus


async def test_an_event_reaches_subscribers_of_its_organization_in_another_process(
    bus_factory: BusFactory,
) -> None:
    publisher, follower = await started(bus_factory), await started(bus_factory)
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    async with follower.subscribe(mine) as ours, follower.subscribe(theirs) as other:
        await publisher.publish(mine, log_line(1))
        await publisher.publish(theirs, log_line(2))
        assert await ours.get(DELIVERY_S) == log_line(1)
        # One publisher keeps its order: had `mine`'s event reached `theirs`, it came first.
        assert await other.get(DELIVERY_S) == log_line(2)


async def test_one_publisher_keeps_its_order(bus_factory: BusFactory) -> None:
    publisher, follower = await started(bus_factory), await started(bus_factory)
    organization = uuid.uuid4()
    async with follower.subscribe(organization) as subscription:
        for n in range(300):
            await publisher.publish(organization, log_line(n))
        received = [await subscription.get(DELIVERY_S) for _ in range(300)]
    assert received == [log_line(n) for n in range(300)]


async def test_local_subscribers_get_an_event_once_not_again_from_redis(
    bus_factory: BusFactory,
) -> None:
    bus, other = await started(bus_factory), await started(bus_factory)
    organization = uuid.uuid4()
    async with bus.subscribe(organization) as subscription:
        await bus.publish(organization, log_line(1))
        # Published elsewhere, so it comes only through Redis: after any echo of the first.
        await other.publish(organization, log_line(2))
        assert await subscription.get(DELIVERY_S) == log_line(1)
        assert await subscription.get(DELIVERY_S) == log_line(2)


async def test_one_listener_connection_serves_every_subscriber(
    bus_factory: BusFactory, raw_redis: Redis, prefix: str
) -> None:
    bus = await started(bus_factory)
    subscriptions = [bus.subscribe(uuid.uuid4()) for _ in range(20)]
    clients = await raw_redis.client_list(_type="pubsub")
    assert [c["name"] for c in clients if c["name"] == f"{prefix}-events"] == [f"{prefix}-events"]
    for subscription in subscriptions:
        await subscription.close()


async def test_closing_the_bus_ends_its_subscriptions(bus_factory: BusFactory) -> None:
    bus = await started(bus_factory)
    subscription = bus.subscribe(uuid.uuid4())
    await bus.close()
    with pytest.raises(SubscriptionClosed):
        await subscription.get(DELIVERY_S)
    assert [e async for e in subscription] == []


async def test_malformed_messages_are_dropped_and_the_listener_goes_on(
    bus_factory: BusFactory, raw_redis: Redis, prefix: str
) -> None:
    publisher, follower = await started(bus_factory), await started(bus_factory)
    organization = uuid.uuid4()
    channel = channel_for(prefix, organization)
    good = {"v": 1, "source": "x", "kind": "task.log", "task_id": str(uuid.uuid4()), "data": {}}
    async with follower.subscribe(organization) as subscription:
        for garbage in [
            b"not json",
            b"\xff\xfe",
            json.dumps([1, 2]).encode(),
            json.dumps(good | {"v": 2}).encode(),  # a version this bus does not read
            json.dumps(good | {"kind": "task.deleted"}).encode(),
            json.dumps(good | {"task_id": "nope"}).encode(),
            json.dumps(good | {"data": "text"}).encode(),
            json.dumps(good | {"extra": 1}).encode(),
        ]:
            await raw_redis.publish(channel, garbage)
        await raw_redis.publish(f"{prefix}:events:not-an-organization", json.dumps(good))
        await publisher.publish(organization, log_line(7))
        assert await subscription.get(DELIVERY_S) == log_line(7)
    assert follower.malformed == 9


async def kill_connections(raw_redis: Redis, name: str) -> int:
    """Have the server drop every connection by that name, as a Redis restart would."""
    killed = 0
    for client in await raw_redis.client_list():
        if client["name"] == name:
            killed += int(await raw_redis.execute_command("CLIENT", "KILL", "ID", client["id"]))
    return killed


async def test_the_listener_survives_a_killed_connection_and_delivers_again(
    bus_factory: BusFactory, raw_redis: Redis, prefix: str
) -> None:
    publisher, follower = await started(bus_factory), await started(bus_factory)
    organization = uuid.uuid4()
    async with follower.subscribe(organization) as subscription:
        await publisher.publish(organization, log_line(1))
        assert await subscription.get(DELIVERY_S) == log_line(1)
        assert follower.connections == 1
        # Both buses' listeners and publishers, like `CLIENT KILL TYPE pubsub` and more, but
        # only ours: other runs may share this server.
        assert await kill_connections(raw_redis, f"{prefix}-events") >= 3
        await until(lambda: follower.connections == 2)
        await publisher.publish(organization, log_line(2))
        # The same subscription, still open: the listener's reconnection was invisible to it.
        assert await subscription.get(DELIVERY_S) == log_line(2)
    assert follower.describe() == "redis"


async def test_without_redis_events_are_dropped_and_the_outage_logged_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logged = RecordedLog()
    monkeypatch.setattr(redis_bus, "log", logged)
    bus = RedisEventBus("redis://127.0.0.1:1/0", prefix=f"test-{uuid.uuid4().hex[:12]}")
    await bus.start(timeout_s=0.2)
    assert bus.describe() == "redis (reconnecting)"
    organization = uuid.uuid4()
    async with bus.subscribe(organization) as subscription:
        for n in range(5):
            await bus.publish(organization, log_line(n))  # never raises
        # Subscribers of this process still hear it; Redis never will.
        assert await subscription.get(DELIVERY_S) == log_line(0)
    await until(lambda: bus.listener_failures >= 3 and bus.dropped_outgoing == 5)
    await bus.close()
    events = logged.events()
    assert events.count("events.redis_listener_lost") == 1
    assert events.count("events.redis_publish_failed") == 1


async def test_an_event_that_is_not_json_ready_never_raises_into_the_publisher(
    bus_factory: BusFactory,
) -> None:
    publisher, follower = await started(bus_factory), await started(bus_factory)
    organization = uuid.uuid4()
    async with follower.subscribe(organization) as subscription:
        await publisher.publish(organization, TaskEvent("task.progress", uuid.uuid4(), {"x": {1}}))
        await publisher.publish(organization, log_line(3))
        assert await subscription.get(DELIVERY_S) == log_line(3)
