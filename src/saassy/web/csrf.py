"""CSRF protection for every dashboard form, signed in or not (a forged login is an attack too).

Each browser holds a random value in an httpOnly cookie; a form carries an HMAC of it under the
server's secret. A cross-site page can make the browser send the cookie but can neither read it
nor compute the HMAC, and a value planted in the cookie is useless without the HMAC. Scripts send
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
from saassy.web.cookies import CSRF_COOKIE, set_cookie

PURPOSE = "saassy dashboard csrf v1"
FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfRefused(Forbidden):
    code = "csrf_failed"


def _token_for(settings: Settings, browser_value: str) -> str:
    key = derived_key(settings.signing_secret, PURPOSE)
    return hmac.new(key, browser_value.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: Request, settings: Settings) -> str:
    """The token this browser's forms carry; gives the browser its cookie on first need."""
    value = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_value", None)
    if not value:
        value = secrets.token_urlsafe(32)
        request.state.new_csrf_value = value
    return _token_for(settings, value)


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
    if not value or not sent or not hmac.compare_digest(sent, _token_for(settings, value)):
        raise CsrfRefused(
            "This form has expired or did not come from this site; reload the page and try again."
        )
