"""Stdout and stderr of a sandbox as chunks of whole lines, at a cost that follows the bytes.

Each pipe is read in large reads; the lines each read completes are redacted and passed on as
one chunk (runtime/lines.py, runtime/redaction.py). Lines longer than `max_line` are split,
never inside a secret the sandbox was given.

Memory stays bounded whatever the sandbox prints: at most `max_buffered` bytes wait for the
consumer. A consumer that keeps up loses nothing — the pump waits for it, and the pipes fill
behind it — but one that stalls for `STALL_S` makes the pump drop chunks instead (a marker
line says how many lines), so the sandbox is never held up for long by its reader. Past
`max_bytes` of kept output per sandbox, the rest is read and thrown away without being looked
at (spliced to /dev/null where the pipe allows: runtime/pipes.py), and marker lines say where
the log was cut and how much more came.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from saassy.runtime.base import MAX_LOG_BYTES, OutputChunk, OutputLine
from saassy.runtime.lines import LineCutter
from saassy.runtime.pipes import READ_SIZE, PipeReader
from saassy.runtime.redaction import NO_SECRETS, Redactor

MAX_LINE = 16 * 1024
MAX_BUFFERED = 4 * 1024 * 1024
STALL_S = 0.5
MIB = 1024 * 1024


class OutputPump:
    """Reads both pipes into one bounded queue of chunks; `chunks()` drains it until EOF."""

    def __init__(
        self,
        *,
        max_line: int = MAX_LINE,
        max_buffered: int = MAX_BUFFERED,
        max_bytes: int = MAX_LOG_BYTES,
        redactor: Redactor = NO_SECRETS,
    ) -> None:
        self._redactor = redactor
        self._max_line = max_line
        self._max_buffered = max_buffered
        self._max_bytes = max_bytes
        self._chunks: deque[OutputChunk] = deque()
        self._buffered = 0
        self._kept = 0
        self._truncated = False
        self._not_kept = 0  # bytes read past `max_bytes`
        self._dropped = 0  # lines dropped while the consumer stalled
        self._stalled = False
        self._changed = asyncio.Event()
        self._taken = asyncio.Event()
        self._open_streams = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._readers: list[asyncio.StreamReader] = []

    def attach(self, stream: str, reader: asyncio.StreamReader | None) -> None:
        if reader is None:
            return
        self._open_streams += 1
        self._readers.append(reader)
        self._tasks.append(asyncio.create_task(self._pump(stream, reader)))

    @property
    def done(self) -> bool:
        return self._open_streams == 0

    async def closed(self, timeout_s: float) -> bool:
        """Whether both pipes reached EOF within `timeout_s`; nothing is cancelled."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout_s)
        return self.done

    async def drained(self, grace_s: float) -> None:
        """Wait for EOF on both pipes; after `grace_s` give up (a leaked child holds them)."""
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _pump(self, stream: str, reader: asyncio.StreamReader) -> None:
        cutter = LineCutter(self._max_line, self._redactor)
        try:
            while data := await reader.read(READ_SIZE):
                if self._truncated:
                    self._not_kept += len(data)
                    continue
                if lines := cutter.feed(data):
                    await self._deliver(stream, lines)
            if self._truncated:
                self._not_kept += cutter.held  # the line it had begun when the log was cut
            elif last := cutter.rest():
                await self._deliver(stream, last)
            if isinstance(reader, PipeReader):
                self._not_kept += reader.discarded
        finally:
            self._open_streams -= 1
            self._changed.set()

    def note(self, stream: str, text: str) -> None:
        """A line of the platform's own among the program's (e.g. a refused connection)."""
        if not self._truncated:
            self._keep(stream, text.encode(errors="replace").replace(b"\n", b" ") + b"\n")

    async def _deliver(self, stream: str, lines: bytes) -> None:
        """Queue `lines`, waiting for the consumer to make room, but not past `STALL_S`."""
        while not self._stalled and self._buffered + len(lines) > self._max_buffered:
            if self._truncated:
                break
            room = self._max_buffered - self._buffered
            fits = lines.rfind(b"\n", 0, room) + 1 if room > 0 else 0
            if fits:
                self._keep(stream, lines[:fits])
                lines = lines[fits:]
            self._taken.clear()
            try:
                async with asyncio.timeout(STALL_S):
                    await self._taken.wait()
            except TimeoutError:
                self._stalled = True
        self._keep(stream, lines)

    def _keep(self, stream: str, lines: bytes) -> None:
        """Queue whole lines within `max_bytes`; a stalled consumer's are counted, not kept."""
        if self._truncated:
            self._not_kept += len(lines)
            return
        if self._stalled:
            self._dropped += lines.count(b"\n")
            return
        if self._kept + len(lines) > self._max_bytes:
            head = lines[: lines.rfind(b"\n", 0, self._max_bytes - self._kept) + 1]
            self._not_kept += len(lines) - len(head)
            self._append(stream, head)
            self._truncated = True
            for reader in self._readers:
                if isinstance(reader, PipeReader):
                    reader.discard_rest()
            mib = f"{self._max_bytes / MIB:g}"
            self._append("system", f"[saassy] log truncated after {mib} MiB\n".encode())
            return
        self._append(stream, lines)

    def _append(self, stream: str, lines: bytes) -> None:
        if not lines:
            return
        if self._dropped:
            self._chunks.append(OutputChunk("stderr", self._dropped_note()))
        self._chunks.append(OutputChunk(stream, lines))
        self._buffered += len(lines)
        self._kept += len(lines)
        self._changed.set()

    def _dropped_note(self) -> bytes:
        note = f"[saassy] {self._dropped} output lines dropped: reader too slow\n"
        self._dropped = 0
        return note.encode()

    async def chunks(self) -> AsyncIterator[OutputChunk]:
        """Every chunk as it comes, until both pipes are closed and the queue is empty."""
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk.data)
                self._stalled = False
                self._taken.set()
                yield chunk
            if self.done:
                for note in self._final_notes():
                    yield note
                return
            self._changed.clear()
            await self._changed.wait()

    def _final_notes(self) -> list[OutputChunk]:
        notes: list[OutputChunk] = []
        if self._dropped:
            notes.append(OutputChunk("stderr", self._dropped_note()))
        if self._not_kept:
            text = f"[saassy] {self._not_kept} more bytes of output were read but not kept\n"
            notes.append(OutputChunk("system", text.encode()))
            self._not_kept = 0
        return notes

    async def lines(self) -> AsyncIterator[OutputLine]:
        """The same output, a line at a time (without its newline)."""
        async for chunk in self.chunks():
            for line in chunk.data[:-1].split(b"\n"):
                yield OutputLine(chunk.stream, line)
