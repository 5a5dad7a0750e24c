"""One-time messages carried across a redirect ("Task canceled."), in a short-lived cookie.

The text is ours, never the customer's, and is escaped like any other text when shown.
"""

from __future__ import annotations

import base64
import json
from typing import Literal

from fastapi import Request, Response

from saassy.config import Settings
from saassy.web.cookies import FLASH_COOKIE, clear_cookie, set_cookie

Kind = Literal["success", "error", "info"]
MAX_LENGTH = 500


def flash(response: Response, settings: Settings, kind: Kind, message: str) -> None:
    payload = json.dumps({"kind": kind, "message": message[:MAX_LENGTH]})
    set_cookie(
        response,
        settings,
        FLASH_COOKIE,
        base64.urlsafe_b64encode(payload.encode()).decode(),
        max_age=60,
    )


def read_flash(request: Request) -> dict[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    kind, message = data.get("kind"), data.get("message")
    if kind not in ("success", "error", "info") or not isinstance(message, str):
        return None
    return {"kind": kind, "message": message[:MAX_LENGTH]}


def clear_flash(response: Response, settings: Settings) -> None:
    clear_cookie(response, settings, FLASH_COOKIE)
