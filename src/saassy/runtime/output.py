"""Stdout and stderr of a sandbox as lines, in bounded memory.

Lines longer than `max_line` are split, never inside a secret the sandbox was given, and every
secret value is redacted before a line leaves (runtime/redaction.py). The buffer between the
pipes and the consumer holds at most
`max_buffered` bytes: a consumer that keeps up loses nothing, and a consumer that stalls (or never
reads) does not stall the sandbox or grow memory — excess lines are dropped and a marker line says
how many.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

from saassy.runtime.base import OutputLine
from saassy.runtime.redaction import NO_SECRETS, Redactor

MAX_LINE = 16 * 1024
MAX_BUFFERED = 4 * 1024 * 1024


class OutputPump:
    """Reads both pipes into one bounded queue of lines; `lines()` drains it until EOF."""

    def __init__(
        self,
        *,
        max_line: int = MAX_LINE,
        max_buffered: int = MAX_BUFFERED,
        redactor: Redactor = NO_SECRETS,
    ) -> None:
        self._redactor = redactor
        self._max_line = max_line
        self._max_buffered = max_buffered
        self._lines: deque[OutputLine] = deque()
        self._buffered = 0
        self._dropped = 0
        self._changed = asyncio.Event()
        self._open_streams = 0
        self._tasks: list[asyncio.Task[None]] = []

    def attach(self, stream: str, reader: asyncio.StreamReader | None) -> None:
        if reader is None:
            return
        self._open_streams += 1
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
        partial = b""
        try:
            while chunk := await reader.read(65536):
                partial += chunk
                *complete, partial = partial.split(b"\n")
                for line in complete:
                    self._emit(stream, line)
                # Hold back enough to see whether a secret straddles the cut.
                while len(partial) >= self._max_line + self._redactor.longest:
                    cut = self._redactor.safe_cut(partial, self._max_line)
                    self._emit(stream, partial[:cut])
                    partial = partial[cut:]
            if partial:
                self._emit(stream, partial)
        finally:
            self._open_streams -= 1
            self._changed.set()

    def note(self, stream: str, text: str) -> None:
        """A line of the platform's own among the program's (e.g. a refused connection)."""
        self._emit(stream, text.encode(errors="replace"))

    def _emit(self, stream: str, data: bytes) -> None:
        if self._redactor:
            data = self._redactor.data(data)
        for start in range(0, max(len(data), 1), self._max_line):
            piece = data[start : start + self._max_line]
            if self._buffered + len(piece) > self._max_buffered:
                self._dropped += 1
                continue
            if self._dropped:
                note = f"[saassy] {self._dropped} output lines dropped: reader too slow"
                self._lines.append(OutputLine("stderr", note.encode()))
                self._dropped = 0
            self._lines.append(OutputLine(stream, piece))
            self._buffered += len(piece)
        self._changed.set()

    async def lines(self) -> AsyncIterator[OutputLine]:
        """Every line as it comes, until both pipes are closed and the queue is empty."""
        while True:
            while self._lines:
                line = self._lines.popleft()
                self._buffered -= len(line.data)
                yield line
            if self.done:
                if self._dropped:
                    note = f"[saassy] {self._dropped} output lines dropped: reader too slow"
                    self._dropped = 0
                    yield OutputLine("stderr", note.encode())
                return
            self._changed.clear()
            await self._changed.wait()
