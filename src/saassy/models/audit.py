"""The audit log: one append-only row per security-relevant action (audit/ writes and reads it).

Nothing here has a foreign key on purpose: an entry outlives the user, key, organization or
secret it names, and GDPR deletion rewrites the ids of a deleted user rather than losing the
entries (audit/__init__.py says how).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from saassy.models.base import Base, RecordMixin


class AuditEntry(RecordMixin, Base):
    """`created_at` is when the action happened (its transaction wrote the entry)."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        # An organization's log, newest first, paged by (created_at, id).
        Index("ix_audit_entries_organization_id_created_at", "organization_id", "created_at", "id"),
    )

    # Who: a user, an API key, both (never today), or nobody (a failed sign-in, Stripe, a sweep).
    actor_user_id: Mapped[uuid.UUID | None]
    actor_api_key_id: Mapped[uuid.UUID | None]
    # The actor acted as the operator's staff, not as a member of the organization.
    by_staff: Mapped[bool] = mapped_column(default=False)
    organization_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[uuid.UUID | None]
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    # A keyed hash of the address a failed sign-in named (never the address itself).
    email_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
