"""Request and response bodies of the API-key endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from saassy.kit.display_names import no_control_characters, trimmed
from saassy.kit.time import utcnow
from saassy.models import ApiKeyScope

DEFAULT_OVERLAP_S = 24 * 3600
MAX_OVERLAP_S = 30 * 24 * 3600
# A key given an expiry lives at most a year (a leap year's 366 days, as GitHub's fine-grained
# tokens): a far expiry is a key that never expires in disguise, and a rotation, which gives
# the new key the old one's lifetime from now, could not give it one past year 9999.
MAX_KEY_LIFETIME = timedelta(days=366)

ApiKeyName = Annotated[
    str,
    BeforeValidator(trimmed),
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(no_control_characters),
]


def _distinct(scopes: list[ApiKeyScope]) -> list[ApiKeyScope]:
    return [scope for scope in ApiKeyScope if scope in scopes]


def _in_the_coming_year(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    now = utcnow()
    if moment <= now:
        raise ValueError("the expiry must be in the future")
    if moment > now + MAX_KEY_LIFETIME:
        raise PydanticCustomError(
            "expiry_too_far",
            "the expiry may be at most {days} days from now; leave it out for a key that does "
            "not expire",
            {"days": MAX_KEY_LIFETIME.days},
        )
    return moment


Scopes = Annotated[list[ApiKeyScope], Field(min_length=1), AfterValidator(_distinct)]


class ApiKeyCreate(BaseModel):
    name: ApiKeyName = Field(description="What the key is for, e.g. 'CI' or 'billing export'.")
    scopes: Scopes = Field(
        default_factory=lambda: [ApiKeyScope.admin],
        description="`read` (GET and HEAD only), `tasks:write` (submit and cancel tasks, and "
        "read) or `admin` (everything an API key may do).",
    )
    expires_at: Annotated[AwareDatetime | None, AfterValidator(_in_the_coming_year)] = Field(
        default=None,
        description="When the key stops working: at most 366 days from now; none by default.",
    )


class ApiKeyRotate(BaseModel):
    overlap_s: int = Field(
        default=DEFAULT_OVERLAP_S,
        ge=0,
        le=MAX_OVERLAP_S,
        description="How long the old key keeps working beside the new one, in seconds.",
    )


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    scopes: list[ApiKeyScope]
    created_at: datetime
    expires_at: datetime | None = Field(
        description="When the key stops working: its expiry, or the end of a rotation's overlap."
    )
    rotated_at: datetime | None = Field(description="When the key was rotated, if it was.")
    replaced_by_id: uuid.UUID | None = Field(description="The key that replaced it, if rotated.")
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    key: str = Field(description="The secret key: shown this once, store it now.")
    scopes: list[ApiKeyScope]
    expires_at: datetime | None
    created_at: datetime


class ApiKeyRotated(ApiKeyCreated):
    replaces: ApiKeyOut = Field(description="The old key, working until its `expires_at`.")
