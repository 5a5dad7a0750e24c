"""Request and response bodies of the webhook endpoints' API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from saassy.kit.display_names import no_control_characters, trimmed
from saassy.webhooks.events import WebhookEventType


def _trimmed_or_empty(value: object) -> object:
    """A description may be empty (or only spaces, which then count as empty)."""
    if isinstance(value, str) and not value.strip():
        return ""
    return trimmed(value)


Description = Annotated[
    str,
    BeforeValidator(_trimmed_or_empty),
    StringConstraints(max_length=255),
    AfterValidator(no_control_characters),
]
Url = Annotated[str, BeforeValidator(trimmed), StringConstraints(min_length=1, max_length=2048)]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="Where events are POSTed: an https:// (or http://) URL.")
    event_types: list[WebhookEventType] = Field(
        default_factory=list, description="The events to send; empty or absent: all of them."
    )
    description: Description = ""
    enabled: bool = True


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    event_types: list[WebhookEventType] | None = None
    description: Description | None = None
    enabled: bool | None = None


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then deliveries are signed with the previous secret too."
    )
    created_at: datetime
    updated_at: datetime | None


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret (whsec_...): shown this once.")


class SecretRotated(BaseModel):
    secret: str = Field(description="The new signing secret: shown this once.")
    previous_secret_expires_at: datetime


class MessageOut(BaseModel):
    id: uuid.UUID
    webhook_id: str = Field(description="The `webhook-id` header the receiver sees.")
    event_type: str
    status: str
    attempts: int = Field(description="Attempts so far, every round counted.")
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None
    created_at: datetime


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    succeeded: bool
    status_code: int | None
    duration_ms: int
    error: str | None
    response_body: str | None
    created_at: datetime


class MessageDetail(MessageOut):
    event: dict[str, object]
    attempt_log: list[AttemptOut]
