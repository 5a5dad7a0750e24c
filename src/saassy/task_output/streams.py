"""Server-sent event streams: a task's logs until it ends, an organization's status changes.

A stream never holds a database session while it waits: it replays from the database in short
sessions, follows the event bus, and filters duplicates by (attempt, seq).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.events.bus import EventBus, SubscriptionClosed
from saassy.models import TaskLogChunk, TaskStatus
from saassy.task_output.repository import TaskOutputRepository

KEEPALIVE_S = 15.0


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


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
    keepalive_s: float = KEEPALIVE_S,
) -> AsyncIterator[str]:
    """Every log chunk so far, then new ones live, then `end` with the final status."""
    position = (0, 0)

    async def replay() -> AsyncIterator[str]:
        nonlocal position
        while True:
            async with sessionmaker() as session:
                chunks = await TaskOutputRepository(session).log_chunks(task_id, after=position)
            for chunk in chunks:
                position = (chunk.attempt_number, chunk.seq)
                yield sse("log", chunk_data(chunk))
            if len(chunks) < 10_000:
                return

    async def final_status() -> str | None:
        async with sessionmaker() as session:
            task = await TaskOutputRepository(session).status(task_id)
        if task is None or TaskStatus(task.status).terminal:
            return None if task is None else str(task.status)
        return None

    async with events.subscribe(organization_id) as subscription:
        async for line in replay():
            yield line
        if (status := await final_status()) is not None:
            # It may have logged and ended between the replay and this read: replay again.
            async for line in replay():
                yield line
            yield sse("end", {"status": status})
            return
        while True:
            try:
                event = await subscription.get(keepalive_s)
            except SubscriptionClosed:
                return
            if event is None:
                yield ": keepalive\n\n"
                continue
            if event.task_id != task_id:
                continue
            if event.kind == "task.log":
                key = (int(event.data["attempt"]), int(event.data["seq"]))
                if key > position:
                    position = key
                    yield sse("log", event.data)
            elif event.kind == "task.status" and TaskStatus(event.data["status"]).terminal:
                async for line in replay():  # anything the bus dropped
                    yield line
                yield sse("end", {"status": event.data["status"]})
                return


async def organization_events(
    events: EventBus, organization_id: uuid.UUID, keepalive_s: float = KEEPALIVE_S
) -> AsyncIterator[str]:
    """Status changes and progress of the organization's tasks, as they happen (no logs)."""
    async with events.subscribe(organization_id) as subscription:
        yield ": connected\n\n"
        while True:
            try:
                event = await subscription.get(keepalive_s)
            except SubscriptionClosed:
                return
            if event is None:
                yield ": keepalive\n\n"
            elif event.kind in ("task.status", "task.progress"):
                yield sse(event.kind, event.as_json())
