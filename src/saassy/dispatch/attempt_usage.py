"""Usage onto an attempt's row and back: the one mapping between `Usage` and its columns."""

from __future__ import annotations

from typing import Any

from saassy.models import TaskAttempt
from saassy.runtime.base import Usage


def usage_columns(usage: Usage | None) -> dict[str, Any]:
    """An attempt row's usage columns (all None when nothing was measured)."""
    return {
        "cpu_seconds": usage.cpu_seconds if usage else None,
        "peak_memory_bytes": usage.peak_memory_bytes if usage else None,
        "wall_seconds": usage.wall_seconds if usage else None,
    }


def recorded_usage(attempt: TaskAttempt) -> Usage | None:
    """What the attempt's row holds: measured by its supervisor (or adoption), else None."""
    if attempt.cpu_seconds is None:
        return None
    return Usage(attempt.cpu_seconds, attempt.peak_memory_bytes or 0, attempt.wall_seconds or 0.0)
