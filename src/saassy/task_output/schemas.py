"""Artifact listings."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class ArtifactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    path: str
    size_bytes: int
    sha256: str
    content_type: str
    attempt_number: int
    created_at: datetime
