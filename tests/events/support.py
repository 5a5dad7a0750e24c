"""What the event bus tests share."""

from __future__ import annotations

from typing import Any


class RecordedLog:
    """Stands in for a module's structlog logger: the events it logged, in order (a cached
    structlog logger would not show them to `capture_logs`)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []

    def _record(self, event: str, **fields: Any) -> None:
        self.entries.append((event, fields))

    info = warning = error = exception = debug = _record

    def events(self) -> list[str]:
        return [event for event, _ in self.entries]
