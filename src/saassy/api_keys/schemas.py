"""Request and response bodies of the API-key endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StringConstraints

from saassy.kit.display_names import no_control_characters, trimmed

ApiKeyName = Annotated[
    str,
    BeforeValidator(trimmed),
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(no_control_characters),
]


class ApiKeyCreate(BaseModel):
    name: ApiKeyName = Field(description="What the key is for, e.g. 'CI' or 'billing export'.")


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    key: str = Field(description="The secret key: shown this once, store it now.")
    created_at: datetime
