"""Live progress: the program's `{"type": "progress", ...}` lines, shown while it runs.

The runtime exposes where `$SAASSY_EVENTS` grows on the host; the supervisor reads new lines
from it every `POLL_S` and, when the latest progress changed, writes it on the task (fenced by
the attempt number) and publishes a `task.progress` event. Reading stops at the file's byte cap,
as the end-of-run read does; the final progress is written with the outcome.
"""

from __future__ import annotations

import contextlib
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from saassy.dispatch.worker_output import (
    MAX_EVENTS_BYTES,
    MAX_MESSAGE_CHARS,
    ProgressEvent,
    parse_event,
)
from saassy.runtime.redaction import Redactor

POLL_S = 1.0
READ_SIZE = 64 * 1024


def progress_json(
    event: ProgressEvent, attempt: int, at: datetime, redactor: Redactor
) -> dict[str, Any]:
    """As stored on the task and sent on `/api/v1/events`: redacted before it is cut to size,
    and as valid Unicode (a lone surrogate from the program's JSON becomes "?")."""
    message = None
    if event.message is not None:
        text = event.message.encode("utf-8", "replace").decode("utf-8")
        message = redactor.text(text)[:MAX_MESSAGE_CHARS]
    return {
        "percent": event.percent,
        "message": message,
        "attempt": attempt,
        "updated_at": at.isoformat(),
    }


class EventsTail:
    """The complete lines appended to a file since the last read, within a total byte budget."""

    def __init__(self, path: Path, budget: int = MAX_EVENTS_BYTES) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""
        self._budget = budget

    def lines(self) -> list[bytes]:
        if self._offset >= self._budget:
            return []
        with contextlib.suppress(OSError):
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
            try:
                want = min(READ_SIZE, self._budget - self._offset)
                while want > 0 and (chunk := os.pread(fd, want, self._offset)):
                    self._offset += len(chunk)
                    self._partial += chunk
                    want = min(READ_SIZE, self._budget - self._offset)
            finally:
                os.close(fd)
        *complete, self._partial = self._partial.split(b"\n")
        return [line for line in complete if line.strip()]


def latest_progress(lines: list[bytes]) -> ProgressEvent | None:
    latest = None
    for line in lines:
        event = parse_event(line)
        if isinstance(event, ProgressEvent):
            latest = event
    return latest
