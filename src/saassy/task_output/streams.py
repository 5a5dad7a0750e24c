"""Server-sent event streams: a task's logs until it ends, an organization's status changes.

A stream never holds a database session while it waits: it replays from the database in short
sessions, follows the event bus, and filters duplicates by (attempt, seq). A task may run for a
day: a stream given `still_allowed` asks it again while it runs, and ends once the answer is no
(the caller signed out, was removed from the organization, the API key was revoked, ...).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.events.bus import EventBus, SubscriptionClosed
from saassy.models import TaskLogChunk, TaskStatus
from saassy.task_output.repository import TaskOutputRepository

KEEPALIVE_S = 15.0
# How often a stream asks `still_allowed` while it has lines to send; when idle it asks at each
# keepalive.
RECHECK_S = 5.0

MAX_POSITION = 2**31 - 1  # attempt_number and seq are INTEGER columns

StillAllowed = Callable[[], Awaitable[bool]]


class AccessEnded(Exception):
    """Raised inside a stream whose caller may no longer see it."""


def sse(event: str, data: Any, id: str | None = None) -> str:
    head = f"id: {id}\n" if id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def log_event_id(attempt: int, seq: int) -> str:
    """A log line's SSE id: a reconnecting EventSource sends it back as Last-Event-ID."""
    return f"{attempt}-{seq}"


def parse_log_event_id(value: str | None) -> tuple[int, int]:
    """Where to resume after a Last-Event-ID (the start if there is none or it is not ours).

    Attempt numbers and sequence numbers are 32-bit columns: a larger number was never one of our
    ids (and would overflow the query), so it means the start too."""
    try:
        attempt, seq = (value or "").split("-")
        position = max(0, int(attempt)), max(0, int(seq))
    except ValueError:
        return (0, 0)
    return position if max(position) <= MAX_POSITION else (0, 0)


def chunk_data(chunk: TaskLogChunk) -> dict[str, Any]:
    return {
        "attempt": chunk.attempt_number,
        "seq": chunk.seq,
        "stream": chunk.stream,
        "data": chunk.data,
    }


async def follow_logs(
    sessionmaker: async_sessionmaker[AsyncSession],
    events: EventBus,
    organization_id: uuid.UUID,
    task_id: uuid.UUID,
    keepalive_s: float | None = None,
    *,
    after: tuple[int, int] = (0, 0),
    with_ids: bool = False,
    statuses: bool = False,
    still_allowed: StillAllowed | None = None,
    recheck_s: float | None = None,
) -> AsyncIterator[str]:
    """Every log chunk so far (past `after`), then new ones live, then `end` with the final
    status. `with_ids`: each log event carries its id (to resume from); `statuses`: the task's
    status changes come too, as `status` events. `still_allowed`: asked at least every
    `recheck_s` seconds with lines to send, and at each keepalive; when it answers False the
    stream ends there (without `end`: the task has not ended)."""
    keepalive = KEEPALIVE_S if keepalive_s is None else keepalive_s
    recheck = RECHECK_S if recheck_s is None else recheck_s
    position = after
    checked_at = time.monotonic()

    async def denied() -> bool:
        nonlocal checked_at
        if still_allowed is None or time.monotonic() - checked_at < recheck:
            return False
        checked_at = time.monotonic()
        return not await still_allowed()

    def log_line(data: dict[str, Any]) -> str:
        key = log_event_id(int(data["attempt"]), int(data["seq"])) if with_ids else None
        return sse("log", data, key)

    async def replay() -> AsyncIterator[str]:
        nonlocal position
        while True:
            async with sessionmaker() as session:
                chunks = await TaskOutputRepository(session).log_chunks(task_id, after=position)
            for chunk in chunks:
                if await denied():
                    raise AccessEnded
                position = (chunk.attempt_number, chunk.seq)
                yield log_line(chunk_data(chunk))
            if len(chunks) < 10_000:
                return

    async def current_status() -> str | None:
        async with sessionmaker() as session:
            task = await TaskOutputRepository(session).status(task_id)
        return None if task is None else str(task.status)

    try:
        async with events.subscribe(organization_id) as subscription:
            async for line in replay():
                yield line
            status = await current_status()
            if status is not None and statuses and not TaskStatus(status).terminal:
                # Whatever changed between the page's render and this connection.
                yield sse("status", {"task_id": str(task_id), "status": status})
            if status is not None and TaskStatus(status).terminal:
                # It may have logged and ended between the replay and this read: replay again.
                async for line in replay():
                    yield line
                yield sse("end", {"status": status})
                return
            while True:
                try:
                    event = await subscription.get(keepalive)
                except SubscriptionClosed:
                    return
                if await denied():
                    return
                if event is None:
                    # A quiet spell: the end may have been lost on the way (a Redis outage, a
                    # listener reconnecting), so ask the database, which cannot lose it.
                    status = await current_status()
                    if status is not None and TaskStatus(status).terminal:
                        async for line in replay():
                            yield line
                        yield sse("end", {"status": status})
                        return
                    yield ": keepalive\n\n"
                    continue
                if event.task_id != task_id:
                    continue
                if event.kind == "task.log":
                    key = (int(event.data["attempt"]), int(event.data["seq"]))
                    if key > position:
                        position = key
                        yield log_line(event.data)
                elif event.kind == "task.status" and not TaskStatus(event.data["status"]).terminal:
                    if statuses:
                        yield sse("status", event.as_json())
                elif event.kind == "task.status":
                    async for line in replay():  # anything the bus dropped
                        yield line
                    yield sse("end", {"status": event.data["status"]})
                    return
    except AccessEnded:
        return  # without `end`: the task has not ended, the caller may no longer watch it


async def organization_events(
    events: EventBus,
    organization_id: uuid.UUID,
    keepalive_s: float | None = None,
    *,
    still_allowed: StillAllowed | None = None,
    recheck_s: float | None = None,
) -> AsyncIterator[str]:
    """Status changes and progress of the organization's tasks, as they happen (no logs).
    `still_allowed` as for `follow_logs`."""
    keepalive = KEEPALIVE_S if keepalive_s is None else keepalive_s
    recheck = RECHECK_S if recheck_s is None else recheck_s
    checked_at = time.monotonic()
    async with events.subscribe(organization_id) as subscription:
        yield ": connected\n\n"
        while True:
            try:
                event = await subscription.get(keepalive)
            except SubscriptionClosed:
                return
            if still_allowed is not None and time.monotonic() - checked_at >= recheck:
                checked_at = time.monotonic()
                if not await still_allowed():
                    return
            if event is None:
                yield ": keepalive\n\n"
            elif event.kind in ("task.status", "task.progress"):
                yield sse(event.kind, event.as_json())
