"""Organization API keys: only a SHA-256 of the key is kept, beside its visible prefix."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from saassy.models.base import Base, RecordMixin


class ApiKeyScope(StrEnum):
    """What a key may do: `read` only reads, `tasks:write` also submits and cancels tasks,
    `admin` does everything an API key can."""

    read = "read"
    tasks_write = "tasks:write"
    admin = "admin"


class ApiKey(RecordMixin, Base):
    __tablename__ = "api_keys"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    created_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # Space-separated, as OAuth writes scopes; keys made before scopes existed are `admin`.
    scopes: Mapped[str] = mapped_column(String(100), default="admin", server_default="admin")
    # Authentication refuses the key from this time on: an expiry chosen at creation, or the
    # end of the overlap after a rotation (no job has to act for the key to stop working).
    expires_at: Mapped[datetime | None]
    # Set when the key was rotated: the key that replaces it, and when.
    rotated_at: Mapped[datetime | None]
    replaced_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL")
    )
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    @property
    def scope_set(self) -> frozenset[ApiKeyScope]:
        return frozenset(ApiKeyScope(s) for s in self.scopes.split())
