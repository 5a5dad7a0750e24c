"""What a program left behind: `result.json`, `$SAASSY_EVENTS` lines and artifact files.

All of it was written by untrusted code: sizes are capped, JSON is parsed defensively, names are
checked, and files are taken through the runtime's artifact collector (regular files only).
"""

from __future__ import annotations

import json
import math
import mimetypes
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_RESULT_BYTES = 1024 * 1024
MAX_EVENTS_BYTES = 1024 * 1024
RESULT_FILE = "result.json"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class InvalidResult(Exception):
    """result.json is too large or not JSON; the message says which."""


@dataclass
class ReportedEvents:
    actions: dict[str, int] = field(default_factory=dict)
    units: dict[str, float] = field(default_factory=dict)
    ignored: int = 0


def read_result(output_dir: Path) -> Any:
    """The parsed result.json, None when absent; InvalidResult when too large or not JSON."""
    path = output_dir / RESULT_FILE
    if path.is_symlink() or not path.is_file():
        return None
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise InvalidResult(f"result.json is larger than {MAX_RESULT_BYTES} bytes")
    try:
        return json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidResult(f"result.json is not valid JSON: {exc}") from exc


def read_events(events_file: Path, declared_actions: tuple[str, ...]) -> ReportedEvents:
    """Actions performed and custom units, from JSON lines such as
    `{"action": "publish", "count": 1}` and `{"units": "pages", "quantity": 3}`.

    Actions the task type does not declare are ignored (they were never reserved), as is
    anything malformed; progress lines and other keys are for the program's own use.
    """
    reported = ReportedEvents()
    if events_file.is_symlink() or not events_file.is_file():
        return reported
    with events_file.open("rb") as handle:
        raw = handle.read(MAX_EVENTS_BYTES)
    for line in raw.splitlines():
        try:
            event = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            reported.ignored += 1
            continue
        if not isinstance(event, dict):
            reported.ignored += 1
            continue
        if not _take(event, reported, declared_actions):
            reported.ignored += 1
    return reported


def _take(event: dict[str, Any], reported: ReportedEvents, declared: tuple[str, ...]) -> bool:
    action, units = event.get("action"), event.get("units")
    if isinstance(action, str) and action in declared:
        count = event.get("count", 1)
        if isinstance(count, int) and not isinstance(count, bool) and 0 < count <= 1_000_000:
            reported.actions[action] = reported.actions.get(action, 0) + count
            return True
        return False
    if isinstance(units, str) and _NAME.match(units):
        quantity = event.get("quantity", 1)
        numeric = isinstance(quantity, int | float) and not isinstance(quantity, bool)
        if numeric and math.isfinite(quantity) and 0 <= quantity <= 1e12:
            reported.units[units] = reported.units.get(units, 0.0) + float(quantity)
            return True
        return False
    return "action" not in event and "units" not in event  # progress and the like


def content_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"
