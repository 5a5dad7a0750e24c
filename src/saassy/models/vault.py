"""The vault: every piece of sealed tenant data (secrets now; browser sessions and OAuth tokens
later), one row per organization, kind and name, sealed with the organization's key."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from saassy.kit.time import utcnow
from saassy.models.base import Base, RecordMixin


class VaultKind(StrEnum):
    secret = "secret"  # noqa: S105 - a kind of item, not a password


class VaultItem(RecordMixin, Base):
    __tablename__ = "vault_items"
    # Its index leads with organization_id, so it serves every per-organization lookup too.
    __table_args__ = (UniqueConstraint("organization_id", "kind", "name"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    kind: Mapped[VaultKind] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    # A Fernet token over {"kind", "name", "value"}, under a key derived for the organization.
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # When the customer last wrote the value; re-sealing with a newer key does not change it.
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When a task last had it opened (to the minute: a burst of tasks writes it once).
    last_used_at: Mapped[datetime | None]
