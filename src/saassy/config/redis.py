"""Checks of the Redis settings (`SAASSY_REDIS_*`), and the URL for the clients that use it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pydantic import SecretStr

if TYPE_CHECKING:
    from saassy.config.settings import Settings

# What both Redis clients (rate limits, events) accept alike.
REDIS_URL_SCHEMES = re.compile(r"rediss?://", re.IGNORECASE)
# No glob characters: they would widen the event listener's pattern subscription.
REDIS_PREFIX = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def redis_scheme(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not REDIS_URL_SCHEMES.match(value.get_secret_value()):
        raise ValueError("not a Redis URL: write redis://host:6379/0 or rediss://...")
    return value


def redis_prefix(value: str) -> str:
    if not REDIS_PREFIX.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a Redis prefix: 1 to 64 letters, digits, '_', '-' or '.'"
        )
    return value


def redis_prefix_needs_redis(settings: Settings) -> Settings:
    if "redis_prefix" in settings.model_fields_set and settings.redis_url is None:
        raise ValueError(
            "SAASSY_REDIS_PREFIX is set but SAASSY_REDIS_URL is not: nothing would use it"
        )
    return settings


def redis_url(settings: Settings) -> str | None:
    """The Redis URL in clear, for the clients that connect with it (never for a log line)."""
    return settings.redis_url.get_secret_value() if settings.redis_url is not None else None
