"""CSRF protection for every dashboard form, signed in or not (a forged login is an attack too).

Each browser holds a random value in an httpOnly cookie; a form carries an HMAC, under the
server's secret, of that value and of the browser's session cookie (none before signing in). A
cross-site page can make the browser send the cookies but can neither read them nor compute the
HMAC. Someone able to plant a cookie (a sibling subdomain) could plant a value they hold a token
for, but a signed-in browser's tokens also depend on its session, which they cannot know, and
signing in starts a new session, so a token from before does not outlive it. Scripts send
the same token in the `X-CSRF-Token` header. SameSite=Lax already keeps the session cookie off
cross-site POSTs in current browsers; this holds where it does not.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from saassy.config import Settings
from saassy.kit.errors import Forbidden
from saassy.kit.security import derived_key
from saassy.web.cookies import CSRF_COOKIE, SESSION_COOKIE, set_cookie

PURPOSE = "saassy dashboard csrf v1"
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Forbidden):
    code = "csrf_failed"


def _token_for(settings: Settings, browser_value: str, session_token: str) -> str:
    key = derived_key(settings.signing_secret, PURPOSE)
    message = f"{browser_value}\0{session_token}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def csrf_token(request: Request, settings: Settings) -> str:
    """The token this browser's forms carry; gives the browser its cookie on first need."""
    value = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_value", None)
    if not value:
        value = secrets.token_urlsafe(32)
        request.state.new_csrf_value = value
    return _token_for(settings, value, request.cookies.get(SESSION_COOKIE, ""))


def attach_csrf_cookie(request: Request, response: Response, settings: Settings) -> None:
    """Set the cookie when this request made the browser's value (see `csrf_token`)."""
    value = getattr(request.state, "new_csrf_value", None)
    if value:
        set_cookie(response, settings, CSRF_COOKIE, value, max_age=60 * 60 * 24 * 365)


async def check_csrf(request: Request, settings: Settings) -> None:
    """Refuse an unsafe request whose token does not match this browser's cookie."""
    if request.method in SAFE_METHODS:
        return
    value = request.cookies.get(CSRF_COOKIE)
    sent = request.headers.get(HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(FORM_FIELD)
        sent = field if isinstance(field, str) else None
    expected = _token_for(settings, value or "", request.cookies.get(SESSION_COOKIE, ""))
    if not value or not sent or not hmac.compare_digest(sent, expected):
        raise CsrfRefused(
            "This form has expired or did not come from this site; reload the page and try again."
        )
