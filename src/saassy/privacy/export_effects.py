"""What an export request asks of the process once committed (see kit/after_commit.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExportQueued:
    """An export was requested: the builder here starts now rather than at its next poll
    (builders in other processes see it at their next poll)."""


EXPORT_QUEUED = ExportQueued()
