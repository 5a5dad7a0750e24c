"""What task writes ask of the engine once committed (see kit/after_commit.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskQueued:
    """Dispatch it now rather than at the next poll, and tell live viewers it is queued."""

    organization_id: uuid.UUID
    task_id: uuid.UUID


@dataclass(frozen=True)
class CancelRequested:
    """The task was dispatched or running: its executor must kill the sandbox and finalize it."""

    task_id: uuid.UUID
