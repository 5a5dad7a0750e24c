"""Response bodies of the data export API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from saassy.models import DataExport
from saassy.privacy.exports import kind_of


class ExportOut(BaseModel):
    id: uuid.UUID
    kind: str  # account | organization
    organization_id: uuid.UUID | None
    status: str  # queued | running | ready | failed | expired
    status_url: str
    download_url: str | None  # while ready
    size_bytes: int | None
    sha256: str | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, export: DataExport) -> ExportOut:
        base = f"/api/v1/account/exports/{export.id}"
        return cls(
            id=export.id,
            kind=kind_of(export),
            organization_id=export.organization_id,
            status=export.status,
            status_url=base,
            download_url=f"{base}/download" if export.status == "ready" else None,
            size_bytes=export.size_bytes,
            sha256=export.sha256,
            created_at=export.created_at,
            finished_at=export.finished_at,
            expires_at=export.expires_at,
        )


class ExportList(BaseModel):
    items: list[ExportOut]
