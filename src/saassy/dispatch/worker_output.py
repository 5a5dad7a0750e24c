"""What a program left behind: `result.json`, `$SAASSY_EVENTS` lines and artifact files.

All of it was written by untrusted code: sizes are capped, JSON is parsed under caps
(`untrusted_json`), names are checked, distinct unit names are bounded per task type, and
files are taken through the runtime's artifact collector (regular files only).
"""

from __future__ import annotations

import math
import mimetypes
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saassy.dispatch.untrusted_json import UnsafeJson, load_untrusted_json
from saassy.tasks.catalog import DEFAULT_MAX_UNIT_NAMES

MAX_RESULT_BYTES = 1024 * 1024
MAX_EVENTS_BYTES = 1024 * 1024
MAX_EVENT_LINE_BYTES = 8 * 1024
MAX_MESSAGE_CHARS = 1000
MAX_ACTION_COUNT = 1_000_000
MAX_UNITS_QUANTITY = 1e12
RESULT_FILE = "result.json"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


MAX_LITTLE_ENTRIES = 16  # what `left_little` looks at, at most
# Parsing untrusted JSON under its caps takes up to ~30 ms for 256 KiB of small numbers or
# objects (measured): what is parsed on the loop stays within ~0.5 ms.
LITTLE_BYTES = 4 * 1024


def left_little(output_dir: Path, events_file: Path) -> bool:
    """Whether a program left little enough to parse and remove on the loop (kit/threads.py):
    a few plain files in its output dir, `LITTLE_BYTES` in all with its events. A bounded look:
    one `scandir` of at most `MAX_LITTLE_ENTRIES` entries; anything else (a subdir, a link, a
    file missing) says no, and a worker thread takes it as before."""
    try:
        total = events_file.stat().st_size
        with os.scandir(output_dir) as entries:
            for seen, entry in enumerate(entries):
                if seen >= MAX_LITTLE_ENTRIES or not entry.is_file(follow_symlinks=False):
                    return False
                total += entry.stat(follow_symlinks=False).st_size
    except OSError:
        return False
    return total <= LITTLE_BYTES


class InvalidOutput(Exception):
    """What the program left cannot be taken (result.json, its events); the message says why."""


@dataclass(frozen=True)
class ProgressEvent:
    """`{"type": "progress", "percent": 40, "message": "..."}`: for the customer's eyes only."""

    percent: float | None
    message: str | None


@dataclass(frozen=True)
class ActionEvent:
    """`{"type": "action", "name": "publish", "count": 1}`: counted against the daily cap."""

    name: str
    count: int


@dataclass(frozen=True)
class UnitsEvent:
    """`{"type": "units", "name": "pages", "quantity": 12}`: custom metered units."""

    name: str
    quantity: float


WorkerEvent = ProgressEvent | ActionEvent | UnitsEvent


@dataclass
class ReportedEvents:
    """What a run reported, summed; `ignored` counts lines that were malformed or not allowed,
    `unit_names_over` units events of new names past `max_unit_names`."""

    max_unit_names: int = DEFAULT_MAX_UNIT_NAMES
    actions: dict[str, int] = field(default_factory=dict)
    units: dict[str, float] = field(default_factory=dict)
    progress: ProgressEvent | None = None
    ignored: int = 0
    unit_names_over: int = 0

    def take(self, event: WorkerEvent | None, declared_actions: tuple[str, ...]) -> None:
        """Add one parsed line; an action the type does not declare was never reserved."""
        match event:
            case ProgressEvent():
                self.progress = event
            case ActionEvent(name, count) if name in declared_actions:
                self.actions[name] = self.actions.get(name, 0) + count
            case UnitsEvent(name, _) if name not in self.units and (
                len(self.units) >= self.max_unit_names
            ):
                self.unit_names_over += 1
            case UnitsEvent(name, quantity):
                self.units[name] = self.units.get(name, 0.0) + quantity
            case _:
                self.ignored += 1


def parse_event(line: bytes | str) -> WorkerEvent | None:
    """One `$SAASSY_EVENTS` line as a typed event; None when it is malformed or of no known type."""
    # A str has at most as many characters as bytes: cheap to refuse before encoding it.
    if len(line) > MAX_EVENT_LINE_BYTES:
        return None
    raw = line.encode() if isinstance(line, str) else line
    if len(raw) > MAX_EVENT_LINE_BYTES:
        return None
    try:
        event = load_untrusted_json(raw)
    except UnsafeJson:
        return None
    if not isinstance(event, dict):
        return None
    kind, name = event.get("type"), event.get("name")
    if kind == "progress":
        return _progress(event.get("percent"), event.get("message"))
    if not (isinstance(name, str) and _NAME.match(name)):
        return None
    if kind == "action":
        count = event.get("count", 1)
        if _is_number(count) and isinstance(count, int) and 0 < count <= MAX_ACTION_COUNT:
            return ActionEvent(name, count)
    elif kind == "units":
        quantity = event.get("quantity", 1)
        if _is_number(quantity) and 0 <= quantity <= MAX_UNITS_QUANTITY:
            return UnitsEvent(name, float(quantity))
    return None


def _progress(percent: Any, message: Any) -> ProgressEvent | None:
    if percent is not None and not (_is_number(percent) and 0 <= percent <= 100):
        return None
    if message is not None and not isinstance(message, str):
        return None
    if percent is None and message is None:
        return None
    return ProgressEvent(None if percent is None else float(percent), message)


def _is_number(value: Any) -> bool:
    """A finite JSON number (booleans are ints to Python, not numbers to the contract)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_result(output_dir: Path) -> Any:
    """The parsed result.json, None when absent; InvalidOutput when too large or unsafe."""
    path = output_dir / RESULT_FILE
    if path.is_symlink() or not path.is_file():
        return None
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise InvalidOutput(f"result.json is larger than {MAX_RESULT_BYTES} bytes")
    with path.open("rb") as handle:  # it may still grow: read no more than the cap
        raw = handle.read(MAX_RESULT_BYTES + 1)
    if len(raw) > MAX_RESULT_BYTES:
        raise InvalidOutput(f"result.json is larger than {MAX_RESULT_BYTES} bytes")
    try:
        return load_untrusted_json(raw)
    except UnsafeJson as exc:
        raise InvalidOutput(f"result.json {exc}") from None


def read_events(
    events_file: Path,
    declared_actions: tuple[str, ...],
    max_unit_names: int = DEFAULT_MAX_UNIT_NAMES,
) -> ReportedEvents:
    """Everything the program reported in `$SAASSY_EVENTS`, read once at the end of the run;
    InvalidOutput when it named more distinct units than its type allows."""
    reported = ReportedEvents(max_unit_names)
    if events_file.is_symlink() or not events_file.is_file():
        return reported
    with events_file.open("rb") as handle:
        raw = handle.read(MAX_EVENTS_BYTES)
    for line in raw.splitlines():
        if line.strip():
            reported.take(parse_event(line), declared_actions)
    if reported.unit_names_over:
        raise InvalidOutput(f"reported more than {max_unit_names} distinct unit names")
    return reported


def content_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"
