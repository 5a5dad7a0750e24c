"""Device cookies: a browser that signed in to an account before is recognised at its next login.

OWASP's answer to lockout by a guesser ("Slow Down Online Guessing Attacks with Device
Cookies"): after a successful sign-in the client gets a cookie bound to that account, signed
with the secret key. A login attempt that presents a valid one for the account it names is
counted only against that device's own budget, never against the account's, so guesses from
anywhere else cannot lock the owner out of a device they used before. The cookie holds a random
device id, when it was issued and an HMAC over the account's e-mail, the id and the time; its
name is derived from the account, so one browser keeps one per account it signs in to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta

from fastapi import Response

from saassy.config import Environment, Settings
from saassy.kit.security import derived_key

COOKIE_PREFIX = "saassy_device_"
# Only the sign-in calls need it (the API's and the dashboard's log-in form): it is never sent
# with the rest of the API or the pages.
COOKIE_PATHS = ("/api/v1/auth", "/login")
DEVICE_TTL = timedelta(days=180)
PURPOSE = "saassy device cookie v1"


class DeviceCookies:
    """Issue and recognise device cookies for the accounts of one deployment."""

    def __init__(self, secret: str) -> None:
        self._key = derived_key(secret, PURPOSE)

    def _mac(self, *parts: str) -> str:
        digest = hmac.new(self._key, "\0".join(parts).encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def name_for(self, email: str) -> str:
        """The cookie's name for an account: says nothing of the address to whoever reads it."""
        return COOKIE_PREFIX + self._mac("name", email.lower())[:16]

    def issue(self, email: str, now: datetime) -> tuple[str, str]:
        """(name, value) of a new cookie for a device that just signed in to `email`."""
        device_id = secrets.token_urlsafe(16)
        issued = str(int(now.timestamp()))
        value = f"{device_id}.{issued}.{self._mac('device', email.lower(), device_id, issued)}"
        return self.name_for(email), value

    def recognise(self, email: str, cookies: Mapping[str, str], now: datetime) -> str | None:
        """The device id when `cookies` hold a valid, unexpired cookie for `email`, else None."""
        value = cookies.get(self.name_for(email))
        if value is None or value.count(".") != 2:
            return None
        device_id, issued, mac = value.split(".")
        if not issued.isdigit() or len(issued) > 12:
            return None
        expected = self._mac("device", email.lower(), device_id, issued)
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        if now.timestamp() - int(issued) > DEVICE_TTL.total_seconds():
            return None
        return device_id


def device_cookies(settings: Settings) -> DeviceCookies:
    return DeviceCookies(settings.signing_secret)


def remember_device(response: Response, settings: Settings, email: str, now: datetime) -> None:
    """Hand the client a device cookie for the account it just signed in to."""
    name, value = device_cookies(settings).issue(email, now)
    for path in COOKIE_PATHS:
        response.set_cookie(
            name,
            value,
            max_age=int(DEVICE_TTL.total_seconds()),
            path=path,
            httponly=True,
            samesite="lax",
            # Development serves plain HTTP on loopback, where a Secure cookie would never come
            # back.
            secure=settings.env is not Environment.development,
        )
