"""Who wants which e-mail, and which notices already went out (so each goes once)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from saassy.models.base import Base, RecordMixin


class NotificationPreference(RecordMixin, Base):
    """One user's choice for one kind of e-mail; no row means the kind's default.

    A row per (user, kind) rather than a column per kind: a new kind needs no migration.
    """

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "kind"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool]
    updated_at: Mapped[datetime | None]


class NoticeSent(RecordMixin, Base):
    """A notice counted under a unique key: a quota threshold of one period (sent once, by
    whichever transaction inserts the key first), or a user's task failures in one hour."""

    __tablename__ = "notices_sent"

    key: Mapped[str] = mapped_column(String(200), unique=True)
    count: Mapped[int] = mapped_column(default=1)
