"""An attempt's output into `task_log_chunks` and onto the event bus, a batch at a time.

A chunk after a quiet spell is written at once; those that follow it gather for at most
`flush_delay_s` or until `FLUSH_BYTES`: a lone line shows at once, a flood costs at most one
write per `flush_delay_s`. Each batch is one INSERT and an event per row; rows are written
before they are published, so a follower that replays the table, then the bus, sees no gap.
The runtime already capped and redacted the output (runtime/output.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.dispatch.ledger import LogChunk, LogRepository
from saassy.events.bus import EventBus, TaskEvent
from saassy.kit.db_outage import is_database_outage
from saassy.runtime.base import OutputChunk

log = structlog.get_logger(__name__)

MAX_ROW_BYTES = 64 * 1024
FLUSH_BYTES = 512 * 1024
FLUSH_DELAY_S = 0.01
MAX_KEPT_BYTES = 4 * 1024 * 1024  # an attempt's lines kept while the database is away


class LogSink:
    """Gathers chunks; writes at most once per `flush_delay_s`, or at `FLUSH_BYTES`."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        events: EventBus,
        *,
        organization_id: uuid.UUID,
        task_id: uuid.UUID,
        attempt_number: int,
        flush_delay_s: float = FLUSH_DELAY_S,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._events = events
        self._organization_id = organization_id
        self._task_id = task_id
        self._attempt = attempt_number
        self._delay = flush_delay_s
        self._pending: list[OutputChunk] = []
        self._pending_bytes = 0
        self._seq = 0
        self._kept: list[LogChunk] = []  # written once a database outage is over
        self._waiting = False
        self._lock = asyncio.Lock()
        self._due = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self.closed = False

    def start(self) -> None:
        self._timer = asyncio.create_task(self._flush_when_due())

    async def add(self, chunk: OutputChunk) -> None:
        if self.closed:
            return
        self._pending.append(chunk)
        self._pending_bytes += len(chunk.data)
        if self._pending_bytes >= FLUSH_BYTES:
            await self.flush()  # the caller waits: output backs up into the runtime's buffer
        else:
            self._due.set()

    async def _flush_when_due(self) -> None:
        """At most one write per `flush_delay_s`: the first chunk after a quiet spell is written
        at once, those that follow it closely wait for the next slot together."""
        loop = asyncio.get_running_loop()
        written_at = -self._delay
        while True:
            await self._due.wait()
            if (wait := written_at + self._delay - loop.time()) > 0:
                await asyncio.sleep(wait)
            self._due.clear()
            await self.flush()
            written_at = loop.time()

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending and not self._kept:
                return
            chunks, self._pending, self._pending_bytes = self._pending, [], 0
            rows, self._kept = [*self._kept, *self._rows(chunks)], []
            try:
                async with self._sessionmaker() as session, session.begin():
                    await LogRepository(session).append(
                        self._organization_id, self._task_id, self._attempt, rows
                    )
            except Exception as exc:  # a database hiccup must not end the attempt
                self._keep_for_later(rows, exc)
                return
            self._waiting = False
            for row in rows:
                data = {"attempt": self._attempt, "seq": row.seq, "stream": row.stream}
                event = TaskEvent("task.log", self._task_id, data | {"data": row.data})
                await self._events.publish(self._organization_id, event)

    def _keep_for_later(self, rows: list[LogChunk], exc: Exception) -> None:
        """While the database is out of reach, keep the rows (up to `MAX_KEPT_BYTES`) for the
        next write after it returns; otherwise the batch is lost."""
        task_id = str(self._task_id)
        if not is_database_outage(exc):
            log.exception("log flush failed", task_id=task_id)
        elif sum(len(row.data) for row in rows) > MAX_KEPT_BYTES:
            log.warning("log lines dropped: the database is away", task_id=task_id)
        else:
            if not self._waiting:
                log.warning("log lines wait for the database", task_id=task_id)
            self._waiting = True
            self._kept = rows

    def _rows(self, chunks: list[OutputChunk]) -> list[LogChunk]:
        """Consecutive chunks of a stream joined, cut at line ends into rows of at most
        `MAX_ROW_BYTES` (an event each)."""
        rows: list[LogChunk] = []
        stream, parts, size = "", list[bytes](), 0
        for chunk in chunks:
            if parts and (chunk.stream != stream or size + len(chunk.data) > MAX_ROW_BYTES):
                rows.append(self._row(stream, b"".join(parts)))
                parts, size = [], 0
            stream = chunk.stream
            data = chunk.data
            while len(data) > MAX_ROW_BYTES:
                cut = data.rfind(b"\n", 0, MAX_ROW_BYTES) + 1 or MAX_ROW_BYTES
                rows.append(self._row(stream, data[:cut]))
                data = data[cut:]
            if data:
                parts.append(data)
                size += len(data)
        if parts:
            rows.append(self._row(stream, b"".join(parts)))
        return rows

    def _row(self, stream: str, data: bytes) -> LogChunk:
        self._seq += 1
        # PostgreSQL's text holds no NUL: one such byte would lose the whole batch.
        text = data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        return LogChunk(self._seq, stream, text)

    async def note(self, lines: list[str]) -> None:
        """Platform lines after the program's own output, on the `system` stream; also once the
        sink is closed (what the platform found in the output comes after the run)."""
        text = "".join(f"[saassy] {line}\n" for line in lines)
        self._pending.append(OutputChunk("system", text.encode()))
        await self.flush()

    async def close(self, *, write: bool = True) -> None:
        """Stop the timer; write what is left unless the attempt was fenced off."""
        if self._timer is not None:
            async with self._lock:  # never in the middle of a write: that batch would be lost
                self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        if write:
            await self.flush()
        self.closed = True
