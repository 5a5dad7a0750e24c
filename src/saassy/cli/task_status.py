"""A task's statuses as the API names them, for the client (without the ORM models).

The same values as `saassy.models.TaskStatus`; a test keeps the two equal.
"""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    queued = "queued"
    dispatched = "dispatched"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    timed_out = "timed_out"
    canceled = "canceled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {TaskStatus.succeeded, TaskStatus.failed, TaskStatus.timed_out, TaskStatus.canceled}
)
