"""The dashboard's cookies: all httpOnly, SameSite=Lax, and Secure outside development (a
developer's `http://127.0.0.1` would not send a Secure cookie back)."""

from __future__ import annotations

from fastapi import Response

from saassy.accounts.browser_sessions import BROWSER_SESSION_MAX
from saassy.config import Environment, Settings

SESSION_COOKIE = "saassy_session"
CSRF_COOKIE = "saassy_csrf"
FLASH_COOKIE = "saassy_flash"


def set_cookie(
    response: Response, settings: Settings, name: str, value: str, *, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.env is not Environment.development,
    )


def set_session_cookie(response: Response, settings: Settings, token: str) -> None:
    set_cookie(
        response,
        settings,
        SESSION_COOKIE,
        token,
        max_age=int(BROWSER_SESSION_MAX.total_seconds()),
    )


def clear_cookie(response: Response, settings: Settings, name: str) -> None:
    response.delete_cookie(
        name,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.env is not Environment.development,
    )
