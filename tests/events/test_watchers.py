"""Watchers hear every organization's events in this process: how a scheduler wakes."""

from __future__ import annotations

import asyncio
import uuid

from saassy.dispatch.scheduler import wake_on_status
from saassy.events.bus import TaskEvent
from saassy.events.memory import MemoryEventBus
from saassy.events.redis import RedisEventBus
from tests.events.test_bus_selection import require_redis
from tests.services import REDIS_URL


async def test_a_watcher_hears_every_organization_without_subscribing() -> None:
    bus = MemoryEventBus()
    heard: list[tuple[uuid.UUID, TaskEvent]] = []
    bus.watch(lambda organization_id, event: heard.append((organization_id, event)))
    first, second = uuid.uuid4(), uuid.uuid4()
    event = TaskEvent("task.status", uuid.uuid4(), {"status": "queued", "attempt": 0})
    await bus.publish(first, event)
    await bus.publish(second, event)
    assert heard == [(first, event), (second, event)]


async def test_a_watcher_hears_what_another_process_publishes_on_redis() -> None:
    require_redis()
    prefix = f"test-watch-{uuid.uuid4().hex[:8]}"
    listener, publisher = (RedisEventBus(REDIS_URL, prefix=prefix) for _ in range(2))
    heard: asyncio.Queue[TaskEvent] = asyncio.Queue()
    listener.watch(lambda organization_id, event: heard.put_nowait(event))
    await listener.start()
    await publisher.start()
    try:
        task_id = uuid.uuid4()
        await publisher.publish(uuid.uuid4(), TaskEvent("task.status", task_id, {"status": "x"}))
        async with asyncio.timeout(10):
            event = await heard.get()
        assert event.task_id == task_id
    finally:
        await publisher.close()
        await listener.close()


def test_the_scheduler_wakes_for_a_task_to_claim_or_a_slot_freed_only() -> None:
    wakeup = asyncio.Event()
    organization, task = uuid.uuid4(), uuid.uuid4()

    def woken_by(kind: str, status: str) -> bool:
        wakeup.clear()
        wake_on_status(wakeup, organization, TaskEvent(kind, task, {"status": status}))  # type: ignore[arg-type]
        return wakeup.is_set()

    assert woken_by("task.status", "queued")
    for ended in ("succeeded", "failed", "timed_out", "canceled"):
        assert woken_by("task.status", ended)
    assert not woken_by("task.status", "running")
    assert not woken_by("task.status", "dispatched")
    assert not woken_by("task.log", "queued")
