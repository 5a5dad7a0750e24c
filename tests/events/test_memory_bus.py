"""The in-memory event bus: per-organization delivery, bounded for slow readers."""

from __future__ import annotations

import uuid

import pytest

from saassy.events.bus import SubscriptionClosed, TaskEvent
from saassy.events.memory import MemoryEventBus


def event(n: int) -> TaskEvent:
    return TaskEvent("task.status", uuid.UUID(int=n), {"status": "running", "attempt": 1})


async def test_subscribers_get_their_organization_events_only() -> None:
    bus = MemoryEventBus()
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    async with bus.subscribe(mine) as subscription:
        await bus.publish(theirs, event(1))
        await bus.publish(mine, event(2))
        assert await subscription.get(1.0) == event(2)
        assert await subscription.get(0.01) is None
    assert bus.subscriber_count(mine) == 0


async def test_a_slow_reader_loses_its_oldest_events_not_the_publisher_time() -> None:
    bus = MemoryEventBus(max_pending=3)
    organization = uuid.uuid4()
    subscription = bus.subscribe(organization)
    for n in range(5):
        await bus.publish(organization, event(n))
    assert [(await subscription.get(0.1)) for _ in range(3)] == [event(2), event(3), event(4)]
    assert subscription.dropped == 2


async def test_closing_the_bus_ends_subscriptions() -> None:
    bus = MemoryEventBus()
    subscription = bus.subscribe(uuid.uuid4())
    await bus.close()
    with pytest.raises(SubscriptionClosed):
        await subscription.get(1.0)
    assert [e async for e in subscription] == []
