"""Unexpected errors to Sentry (or a service that speaks its protocol), never a secret with them.

Off unless `SAASSY_SENTRY_DSN` is set. What could carry a secret is not sent at all: no
personal data, no request bodies, cookies or query strings, no local variables (a frame's
locals may hold a tenant's opened vault values), only harmless request headers. What is sent is
scrubbed once more before it leaves: values under secret-sounding keys, and every secret value
the settings hold wherever it appears.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from saassy import __version__
from saassy.config import Settings
from saassy.kit.logging import REDACTED, SECRET_KEYS

# Request headers that say what was asked without carrying credentials.
SAFE_HEADERS = frozenset(
    {"accept", "content-length", "content-type", "host", "user-agent", "x-request-id"}
)
QUERY = re.compile(r"(/[^\s?\"']*)\?[^\s\"']*")
KEY_LIKE = re.compile(r"[A-Za-z0-9_+/=-]{16,}")
SECRET_NAMES = re.compile(SECRET_KEYS.pattern + r"|dsn|vault|credential|private", re.I)


def settings_secrets(settings: Settings) -> set[str]:
    """Every secret value the settings hold: SecretStr fields and passwords inside URLs."""
    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
            found.add(value)
            found.update(KEY_LIKE.findall(value))  # each key of a ring, whatever its syntax
        if isinstance(value, str) and "://" in value and (password := urlsplit(value).password):
            found.add(password)
    return {value for value in found if len(value) >= 6}


class Scrubber:
    """Sentry's `before_send`: the event without anything that could be a secret."""

    def __init__(self, secrets: set[str]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted(secrets, key=len, reverse=True)

    def __call__(self, event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
        request = event.get("request")
        if isinstance(request, dict):
            for dropped in ("cookies", "data", "query_string", "env"):
                request.pop(dropped, None)
            if isinstance(request.get("url"), str):
                request["url"] = request["url"].split("?", 1)[0]
            headers = request.get("headers")
            if isinstance(headers, dict):
                request["headers"] = {k: v for k, v in headers.items() if k.lower() in SAFE_HEADERS}
        scrubbed: dict[str, Any] = self.scrub(event)
        return scrubbed

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, REDACTED)
            return QUERY.sub(r"\1", value)
        if isinstance(value, MutableMapping):
            return {
                key: REDACTED
                if isinstance(key, str) and SECRET_NAMES.search(key)
                else self.scrub(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self.scrub(item) for item in value]
        return value


def start_error_tracking(settings: Settings) -> bool:
    """Initialise the Sentry SDK when a DSN is set; whether it was."""
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    scrubber = Scrubber(settings_secrets(settings))
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.env.value,
        release=f"saassy@{__version__}",
        # What the SDK collects by itself (it replaced `send_default_pii=False`, which it now
        # deprecates): no user, cookies, bodies, query strings, SQL parameters or locals.
        data_collection={
            "user_info": False,
            "cookies": {"mode": "off"},
            "http_headers": {"request": {"mode": "allowlist", "terms": sorted(SAFE_HEADERS)}},
            "http_bodies": [],
            "url_query_params": {"mode": "off"},
            "database_query_data": False,
            "stack_frame_variables": False,
            "graphql": {"document": False, "variables": False},
            "gen_ai": {"inputs": False, "outputs": False},
        },
        before_send=scrubber,  # type: ignore[arg-type]
        before_breadcrumb=lambda crumb, _hint: scrubber.scrub(crumb),
        integrations=[
            StarletteIntegration(),
            FastApiIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
        ],
    )
    return True


def report_logged_errors(
    _logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: an error logged with its exception (`log.exception`, a supervisor
    that failed) goes to error tracking too; only the exception, the line stays in the log."""
    exc_info = event.get("exc_info")
    if exc_info and method in ("error", "exception", "critical"):
        import sentry_sdk

        error = exc_info if isinstance(exc_info, BaseException) else None
        if isinstance(exc_info, tuple):
            error = exc_info[1]
        sentry_sdk.capture_exception(error)  # None: the exception being handled
    return event
