"""The event bus interface: publish an organization's task events, subscribe to them live.

Delivery is best effort and live only: the database holds the durable truth (task rows, log
chunks), so a subscriber that falls behind loses events rather than slowing the publisher, and
readers replay from the database before following the bus.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Literal, get_args

EventKind = Literal["task.status", "task.log", "task.progress"]
EVENT_KINDS: frozenset[str] = frozenset(get_args(EventKind))


@dataclass(frozen=True)
class TaskEvent:
    """One thing that happened to a task; `data` is JSON-ready."""

    kind: EventKind
    task_id: uuid.UUID
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"type": self.kind, "task_id": str(self.task_id), **self.data}


class SubscriptionClosed(Exception):
    """The bus closed the subscription (shutdown)."""


class Subscription(abc.ABC):
    """Registered when created, so nothing published afterwards is missed; close() ends it."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[TaskEvent]: ...

    @abc.abstractmethod
    async def get(self, timeout_s: float) -> TaskEvent | None:
        """The next event, None after `timeout_s` without one; SubscriptionClosed at the end."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


EventWatcher = Callable[[uuid.UUID, TaskEvent], None]


class EventBus(abc.ABC):
    name: ClassVar[str]
    # Whether a subscriber here hears what other processes publish (and they, what it does).
    spans_processes: ClassVar[bool] = False

    async def start(self) -> None:  # noqa: B027 - a hook: only a bus that connects overrides it
        """Connect, so that a subscription made after this returns misses nothing published
        anywhere afterwards; nothing to do for a bus within one process."""

    def describe(self) -> str:
        """Which bus, and its state where it has one: for the log and `/ready`."""
        return self.name

    @abc.abstractmethod
    async def publish(self, organization_id: uuid.UUID, event: TaskEvent) -> None:
        """Deliver to every current subscriber of the organization; never blocks on them."""

    @abc.abstractmethod
    def subscribe(self, organization_id: uuid.UUID) -> Subscription:
        """Events of the organization from now on (use as `async with bus.subscribe(o) as s`)."""

    @abc.abstractmethod
    def watch(self, watcher: EventWatcher) -> None:
        """Call `watcher` with every event of every organization this process hears, at once
        and in this process only (a scheduler wakes on them): it must be quick and not raise."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; subscribers end."""


async def publish_status(
    bus: EventBus, organization_id: uuid.UUID, task_id: uuid.UUID, status: str, attempt: int
) -> None:
    """A task's status changed (committed): for the dashboard and followers of its logs."""
    data = {"status": str(status), "attempt": attempt}
    await bus.publish(organization_id, TaskEvent("task.status", task_id, data))


async def publish_progress(
    bus: EventBus, organization_id: uuid.UUID, task_id: uuid.UUID, progress: dict[str, Any]
) -> None:
    """The program reported progress (written on the task): percent, message, attempt."""
    await bus.publish(organization_id, TaskEvent("task.progress", task_id, dict(progress)))
