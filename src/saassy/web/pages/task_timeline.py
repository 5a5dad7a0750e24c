"""A task's attempts as a timeline: queue wait, start-up and run time of each, to one scale."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from saassy.kit.time import as_utc
from saassy.models import Task, TaskAttempt, TaskStatus


@dataclass(frozen=True)
class Segment:
    kind: str  # "queued" (waiting for a slot), "dispatched" (starting), "running"
    label: str
    seconds: float
    left: float  # percent of the timeline
    width: float


@dataclass(frozen=True)
class TimelineRow:
    label: str  # "Attempt 1", "Waiting"
    segments: list[Segment]
    outcome: str  # an attempt or task status
    reason: str  # why it ended, in words ("" while it runs)
    queued_s: float | None
    startup_s: float | None
    run_s: float | None


@dataclass(frozen=True)
class Timeline:
    rows: list[TimelineRow]
    total_s: float


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (as_utc(end) - as_utc(start)).total_seconds())


REASONS = {
    "exited": "exited",
    "timed_out": "ran past its timeout",
    "killed": "stopped (canceled)",
    "out_of_memory": "ran out of memory",
    "lost": "the platform lost it (it runs again; not counted as a retry)",
}


def _reason(attempt: TaskAttempt) -> str:
    if attempt.finished_at is None and attempt.status in ("dispatched", "running"):
        return ""
    parts = []
    if attempt.end_reason:
        parts.append(REASONS.get(attempt.end_reason, attempt.end_reason.replace("_", " ")))
    if attempt.exit_code is not None:
        parts.append(f"exit code {attempt.exit_code}")
    if attempt.error:
        parts.append(attempt.error)
    return "; ".join(parts)


def build_timeline(task: Task, attempts: Sequence[TaskAttempt], now: datetime) -> Timeline:
    """Rows for each attempt (and one for a wait still under way), segments as percentages of
    the span from the task's creation to its end (or now)."""
    start = as_utc(task.created_at)
    end = as_utc(task.finished_at) if task.finished_at else as_utc(now)
    total = max((end - start).total_seconds(), 0.001)

    def segment(kind: str, label: str, a: datetime | None, b: datetime | None) -> Segment | None:
        if a is None or b is None:
            return None
        seconds = _seconds(a, b) or 0.0
        left = max(0.0, (as_utc(a) - start).total_seconds()) / total * 100
        width = max(seconds / total * 100, 0.4)
        return Segment(kind, label, seconds, min(left, 99.6), min(width, 100 - min(left, 99.6)))

    rows: list[TimelineRow] = []
    waiting_since: datetime | None = task.created_at
    for attempt in attempts:
        dispatched = attempt.created_at
        running = attempt.started_at
        finished = attempt.finished_at
        live_end = finished or (None if task.finished_at is None else task.finished_at) or now
        pieces = [
            segment("queued", "Queued", waiting_since, dispatched),
            segment("dispatched", "Starting", dispatched, running or live_end),
            segment("running", "Running", running, live_end) if running else None,
        ]
        rows.append(
            TimelineRow(
                label=f"Attempt {attempt.number}",
                segments=[p for p in pieces if p is not None],
                outcome=str(attempt.status),
                reason=_reason(attempt),
                queued_s=_seconds(waiting_since, dispatched),
                startup_s=_seconds(dispatched, running or (finished if running is None else None)),
                run_s=_seconds(running, finished or (None if finished else live_end))
                if running
                else None,
            )
        )
        waiting_since = finished
    status = TaskStatus(task.status)
    if status is TaskStatus.queued or (status.terminal and not attempts):
        # Waiting for its first slot (or a retry's backoff), or ended before it ever ran.
        since = waiting_since or task.created_at
        until = task.finished_at or now
        piece = segment("queued", "Queued", since, until)
        rows.append(
            TimelineRow(
                label="Waiting" if status is TaskStatus.queued else "Never ran",
                segments=[piece] if piece else [],
                outcome=str(status),
                reason=task.error or "" if status.terminal else "",
                queued_s=_seconds(since, until),
                startup_s=None,
                run_s=None,
            )
        )
    return Timeline(rows, total)
