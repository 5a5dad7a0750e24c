"""structlog set-up: readable in development, JSON lines elsewhere, secrets redacted."""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping, Sequence
from typing import Any

import structlog

SECRET_KEYS = re.compile(r"pass(word)?|secret|token|authorization|api_?key|cookie|smtp_url", re.I)
REDACTED = "[redacted]"


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drop the value of any field whose name says it holds a secret."""
    for key in list(event):
        if key != "event" and SECRET_KEYS.search(key):
            event[key] = REDACTED
    return event


SHARED_PROCESSORS: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    redact_secrets,
]


def json_formatter() -> logging.Formatter:
    """A stdlib formatter writing the same JSON lines as structlog (the server's own logs)."""
    return structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        foreign_pre_chain=[*SHARED_PROCESSORS, structlog.stdlib.add_logger_name],
    )


def configure_logging(*, json: bool, level: str = "INFO", report: Sequence[Any] = ()) -> None:
    """`report`: processors that see each event with its exception still attached (error
    tracking), after secrets are redacted."""
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            *SHARED_PROCESSORS,
            *report,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        cache_logger_on_first_use=True,
    )


class WithoutQueryStrings(logging.Filter):
    """uvicorn's access log without query strings: e-mailed links carry their single-use
    tokens there (`/reset-password?token=...`), and a log is no place for them."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn.access: (client, method, path with query, HTTP version, status)
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], args[2].split("?", 1)[0], *args[3:])
        return True
