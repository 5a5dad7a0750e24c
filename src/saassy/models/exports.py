"""GDPR data exports: one row per requested archive of what is held about a user or an
organization (privacy/ builds it, stores it, e-mails its link and removes it at expiry)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from saassy.models.base import Base, RecordMixin


class ExportStatus(StrEnum):
    queued = "queued"
    running = "running"
    ready = "ready"  # stored; downloadable until `expires_at`
    failed = "failed"
    expired = "expired"  # its archive was removed


class DataExport(RecordMixin, Base):
    __tablename__ = "data_exports"

    # Who asked: the only person who may download it.
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # NULL: the user's own account export; else an organization export (owners only).
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[ExportStatus] = mapped_column(String(16), default=ExportStatus.queued)
    storage_key: Mapped[str | None] = mapped_column(String(1024))
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # When a builder claimed it: a claim older than the builders' lease is taken over.
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(String(255))


# A user's recent exports (the rate limit and the dashboard), newest first.
Index("ix_data_exports_user_created", DataExport.user_id, DataExport.created_at)
# The builders' and the sweeper's scans.
Index("ix_data_exports_status", DataExport.status, DataExport.created_at)
