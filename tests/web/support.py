"""Driving the dashboard over HTTP as a browser would: cookies kept, forms posted with their
CSRF token. (tests/browser drives it in Chromium.)"""

from __future__ import annotations

import re
import uuid
from html.parser import HTMLParser

import httpx
from fastapi import FastAPI

from saassy.context import AppContext
from tests.conftest import CLIENT_IP
from tests.email.mail import latest_link_token

CSRF_FIELD = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
PASSWORD = "correct horse battery"


class Browser(httpx.AsyncClient):
    """A browser on one app, whose outbox it can read as its user reads their mail."""

    def __init__(self, app: FastAPI, ip: str) -> None:
        transport = httpx.ASGITransport(app=app, client=(ip, 51000))
        super().__init__(transport=transport, base_url="https://saassy.test")
        self.ctx: AppContext = app.state.ctx


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "input" and named.get("name"):
            self.found[str(named["name"])] = named


def input_attributes(page: str, name: str) -> dict[str, str | None]:
    """The attributes of the <input> named `name`, as a browser's parser reads them."""
    parser = _Inputs()
    parser.feed(page)
    return parser.found[name]


def browser_for(app: FastAPI, ip: str = CLIENT_IP) -> Browser:
    """A cookie-keeping client over HTTPS (outside development the cookies are Secure)."""
    return Browser(app, ip)


async def csrf_token(browser: httpx.AsyncClient, page: str = "/login") -> str:
    """The token the forms on `page` carry (and the browser's CSRF cookie, set on first visit)."""
    response = await browser.get(page)
    found = CSRF_FIELD.search(response.text)
    assert found, f"no CSRF field on {page} ({response.status_code})"
    return found.group(1)


async def submit(
    browser: httpx.AsyncClient,
    action: str,
    data: dict[str, str] | None = None,
    *,
    page: str = "/login",
) -> httpx.Response:
    """Post a form as the page `page` would: with its CSRF token."""
    token = await csrf_token(browser, page)
    return await browser.post(action, data={**(data or {}), "csrf_token": token})


async def sign_up(
    browser: httpx.AsyncClient, email: str | None = None, *, verified: bool = True, **extra: str
) -> str:
    """Sign up through the form; the browser is then signed in. Unless `verified=False`, the
    user then follows the verification e-mail's link (unverified accounts may not create API
    keys or invite members). Answers the e-mail."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    response = await submit(
        browser, "/signup", {"email": email, "password": PASSWORD, **extra}, page="/signup"
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/app"
    if verified:
        await verify_email(browser, email)
    return email


async def verify_email(browser: httpx.AsyncClient, email: str) -> httpx.Response:
    """Follow the newest verification link e-mailed to `email`: open the page, press the button."""
    assert isinstance(browser, Browser), "use browser_for(app)"
    token = await latest_link_token(browser.ctx, email.lower(), "/verify-email")
    response = await submit(
        browser, "/verify-email", {"token": token}, page=f"/verify-email?token={token}"
    )
    assert response.status_code == 303, response.text
    return response
