"""An attempt's stdout/stderr into `task_log_chunks` (batched, bounded) and onto the event bus."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.dispatch.ledger import LogChunk, LogRepository
from saassy.events.bus import EventBus, TaskEvent
from saassy.runtime.base import OutputLine

log = structlog.get_logger(__name__)

MAX_LOG_BYTES = 8 * 1024 * 1024  # per attempt; more is dropped with a note
MAX_CHUNK_BYTES = 64 * 1024
FLUSH_LINES = 500
FLUSH_INTERVAL_S = 0.2


class LogSink:
    """Buffers lines; writes a batch every `flush_interval_s` or `flush_lines` lines."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        events: EventBus,
        *,
        organization_id: uuid.UUID,
        task_id: uuid.UUID,
        attempt_number: int,
        max_bytes: int = MAX_LOG_BYTES,
        flush_interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._events = events
        self._organization_id = organization_id
        self._task_id = task_id
        self._attempt = attempt_number
        self._max_bytes = max_bytes
        self._interval = flush_interval_s
        self._pending: list[OutputLine] = []
        self._seq = 0
        self._written = 0
        self._truncated = False
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        self._timer = asyncio.create_task(self._flush_periodically())

    async def add(self, line: OutputLine) -> None:
        if self.closed:
            return
        if self._written + len(line.data) > self._max_bytes:
            if not self._truncated:
                self._truncated = True
                note = f"[saassy] log truncated: more than {self._max_bytes} bytes"
                self._pending.append(OutputLine("stderr", note.encode()))
            return
        self._written += len(line.data) + 1
        self._pending.append(line)
        if len(self._pending) >= FLUSH_LINES:
            await self.flush()

    async def _flush_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:  # a database hiccup must not end the attempt; retried next tick
                log.exception("log flush failed", task_id=str(self._task_id))

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            lines, self._pending = self._pending, []
            chunks = self._chunks(lines)
            async with self._sessionmaker() as session, session.begin():
                await LogRepository(session).append(
                    self._organization_id, self._task_id, self._attempt, chunks
                )
            for chunk in chunks:
                data = {
                    "attempt": self._attempt,
                    "seq": chunk.seq,
                    "stream": chunk.stream,
                    "data": chunk.data,
                }
                await self._events.publish(
                    self._organization_id, TaskEvent("task.log", self._task_id, data)
                )

    def _chunks(self, lines: list[OutputLine]) -> list[LogChunk]:
        chunks: list[LogChunk] = []
        stream, size = "", 0
        parts: list[str] = []
        for line in lines:
            text = line.data.decode("utf-8", errors="replace") + "\n"
            if parts and (line.stream != stream or size + len(text) > MAX_CHUNK_BYTES):
                chunks.append(LogChunk(self._next_seq(), stream, "".join(parts)))
                parts, size = [], 0
            stream = line.stream
            parts.append(text)
            size += len(text)
        if parts:
            chunks.append(LogChunk(self._next_seq(), stream, "".join(parts)))
        return chunks

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def close(self, *, write: bool = True) -> None:
        """Stop the timer; write what is left unless the attempt was fenced off."""
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        if write:
            await self.flush()
        self.closed = True
