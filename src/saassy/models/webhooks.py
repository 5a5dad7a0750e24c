"""Outgoing webhooks: an organization's endpoints, the messages owed to them, every attempt."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from saassy.models.base import Base, RecordMixin


class WebhookEndpoint(RecordMixin, Base):
    __tablename__ = "webhook_endpoints"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(255), default="")
    event_types: Mapped[list[str]] = mapped_column(
        JSON, doc="The event types sent here; an empty list means every type."
    )
    enabled: Mapped[bool] = mapped_column(default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    # `whsec_...`, sealed with SAASSY_SECRET_KEY; the previous one signs too until it expires.
    secret: Mapped[str] = mapped_column(Text)
    previous_secret: Mapped[str | None] = mapped_column(Text)
    previous_secret_expires_at: Mapped[datetime | None]
    failing_since: Mapped[datetime | None] = mapped_column(
        doc="The first failed attempt since the last success; cleared by a success."
    )
    updated_at: Mapped[datetime | None]


class WebhookMessageStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"  # every attempt of the schedule failed (a redelivery starts it again)


class WebhookMessage(RecordMixin, Base):
    """One event owed to one endpoint; its id is the `webhook-id` the receiver deduplicates on."""

    __tablename__ = "webhook_messages"

    organization_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE")
    )
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_type: Mapped[str] = mapped_column(String(64))
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[WebhookMessageStatus] = mapped_column(
        String(16), default=WebhookMessageStatus.pending
    )
    # Attempts of the current round (a redelivery starts a new round) and of all rounds.
    attempts: Mapped[int] = mapped_column(default=0)
    total_attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    delivered_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


# An endpoint's delivery log, newest first.
Index("ix_webhook_messages_endpoint_created", WebhookMessage.endpoint_id, WebhookMessage.created_at)


class WebhookAttempt(RecordMixin, Base):
    __tablename__ = "webhook_attempts"

    message_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_messages.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    succeeded: Mapped[bool]
    status_code: Mapped[int | None]
    duration_ms: Mapped[int]
    error: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text, doc="The first 1,024 characters.")
