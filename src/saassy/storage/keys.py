"""Where an attempt's artifacts live in storage: `{organization}/{task}/{attempt}/{path}`; and
data exports' archives: `exports/{export}.zip`.

One layout, read back by the storage sweep to tell whose an object is."""

from __future__ import annotations

import uuid


def artifact_key(
    organization_id: uuid.UUID, task_id: uuid.UUID, attempt_number: int, relative_path: str
) -> str:
    return f"{organization_id}/{task_id}/{attempt_number}/{relative_path}"


EXPORTS_PREFIX = "exports/"


def export_key(export_id: uuid.UUID) -> str:
    """A data export's archive (privacy/): removed by the export sweep at its expiry."""
    return f"{EXPORTS_PREFIX}{export_id}.zip"


def attempt_of_key(key: str) -> tuple[uuid.UUID, int] | None:
    """(task, attempt) of an artifact's key; None for any other key."""
    parts = key.split("/", 3)
    if len(parts) < 4:
        return None
    try:
        uuid.UUID(parts[0])
        return uuid.UUID(parts[1]), int(parts[2])
    except ValueError:
        return None
