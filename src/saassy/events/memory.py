"""The in-process event bus (`saassy dev`, one process): a bounded queue per subscriber."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

from saassy.events.bus import (
    EventBus,
    EventWatcher,
    Subscription,
    SubscriptionClosed,
    TaskEvent,
)

MAX_PENDING = 1000


class _End:
    pass


_END = _End()


class MemorySubscription(Subscription):
    def __init__(self, bus: MemoryEventBus, organization_id: uuid.UUID, max_pending: int) -> None:
        self._bus = bus
        self._organization_id = organization_id
        self._queue: asyncio.Queue[TaskEvent | _End] = asyncio.Queue(max_pending + 1)
        self._max_pending = max_pending
        self.dropped = 0
        self._closed = False

    def deliver(self, event: TaskEvent | _End) -> None:
        if self._closed:
            return
        if isinstance(event, TaskEvent) and self._queue.qsize() >= self._max_pending:
            # A slow reader loses its oldest events instead of holding the publisher up.
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def _events(self) -> AsyncIterator[TaskEvent]:
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                return
            yield item

    async def get(self, timeout_s: float) -> TaskEvent | None:
        try:
            async with asyncio.timeout(timeout_s):
                item = await self._queue.get()
        except TimeoutError:
            return None
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # stay ended for the next caller
            raise SubscriptionClosed
        return item

    def __aiter__(self) -> AsyncIterator[TaskEvent]:
        return self._events()

    async def close(self) -> None:
        if not self._closed:
            self._bus._forget(self._organization_id, self)
            self._closed = True
            self._queue.put_nowait(_END)


class MemoryEventBus(EventBus):
    """Subscribers of one process only; a Redis-backed bus spans processes."""

    name = "memory"

    def __init__(self, max_pending: int = MAX_PENDING) -> None:
        self._max_pending = max_pending
        self._subscribers: defaultdict[uuid.UUID, set[MemorySubscription]] = defaultdict(set)
        self._watchers: list[EventWatcher] = []

    async def publish(self, organization_id: uuid.UUID, event: TaskEvent) -> None:
        for subscription in list(self._subscribers.get(organization_id, ())):
            subscription.deliver(event)
        for watcher in self._watchers:
            watcher(organization_id, event)

    def watch(self, watcher: EventWatcher) -> None:
        self._watchers.append(watcher)

    def subscribe(self, organization_id: uuid.UUID) -> MemorySubscription:
        subscription = MemorySubscription(self, organization_id, self._max_pending)
        self._subscribers[organization_id].add(subscription)
        return subscription

    def subscriber_count(self, organization_id: uuid.UUID) -> int:
        return len(self._subscribers.get(organization_id, ()))

    def _forget(self, organization_id: uuid.UUID, subscription: MemorySubscription) -> None:
        subscribers = self._subscribers.get(organization_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[organization_id]

    async def close(self) -> None:
        for subscribers in list(self._subscribers.values()):
            for subscription in list(subscribers):
                subscription.deliver(_END)
        self._subscribers.clear()
