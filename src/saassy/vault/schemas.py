"""Request and response bodies of the secret endpoints: values go in, never out."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

MAX_VALUE_BYTES = 64 * 1024


class SecretPut(BaseModel):
    # A rejected value must not come back in an error (pydantic repeats the input otherwise).
    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid")

    value: SecretStr = Field(
        description="The secret, up to 64 KiB of UTF-8 text without NUL; it is never shown again."
    )

    @field_validator("value")
    @classmethod
    def _storable(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if not text:
            raise ValueError("must not be empty")
        if "\x00" in text:
            raise ValueError("must not contain NUL characters")
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate ("\ud800") is valid JSON, not text
            raise ValueError("must be Unicode text (it holds a lone surrogate)") from None
        if size > MAX_VALUE_BYTES:
            raise ValueError(f"is {size} bytes as UTF-8; a secret may be at most {MAX_VALUE_BYTES}")
        return value


class SecretOut(BaseModel):
    """What can be known about a secret: its name and when it was written, nothing of its value."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    created_at: datetime
    updated_at: datetime = Field(description="When the value was last set.")
    last_used_at: datetime | None = Field(
        None, description="When a task last had it opened (to the minute); null: never."
    )
