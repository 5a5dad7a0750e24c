"""What schedule writes ask of the process once committed (see kit/after_commit.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class ScheduleChanged:
    """A schedule was created or its due time moved: the loop here looks again now rather than
    when it planned to wake (loops in other processes see it at their next poll)."""

    schedule_id: uuid.UUID
