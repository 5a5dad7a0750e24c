"""Users and their credentials: refresh-token families and magic links (all stored hashed)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from saassy.models.base import Base, RecordMixin


class User(RecordMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_staff: Mapped[bool] = mapped_column(default=False)
    email_verified_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    # The owner asked for the account to be erased (privacy/erasure.py): sign-in is refused
    # from then on (`disabled_at` is set with it) and the eraser job removes the row.
    deletion_requested_at: Mapped[datetime | None]


class RefreshToken(RecordMixin, Base):
    """One link in a rotation chain; presenting a used link revokes its whole family."""

    __tablename__ = "refresh_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class MagicLink(RecordMixin, Base):
    """A single-use token e-mailed to an address: to sign in, reset a password or verify it."""

    __tablename__ = "magic_links"

    email: Mapped[str] = mapped_column(String(320), index=True)
    # sign_in, reset_password or verify_email (accounts/email_tokens.py): a token redeems only
    # for the purpose it was sent for.
    purpose: Mapped[str] = mapped_column(String(32), default="sign_in", server_default="sign_in")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class BrowserSession(RecordMixin, Base):
    """A dashboard sign-in: the cookie holds the token, the table only its digest."""

    __tablename__ = "browser_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The organization the dashboard acts on; NULL: the user's personal one.
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="SET NULL")
    )
    user_agent: Mapped[str] = mapped_column(String(255), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
