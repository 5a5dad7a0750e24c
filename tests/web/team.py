"""Steps the organization, API-key and secret page tests share: accounts made through the API,
signed in to the dashboard, working in a team organization."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from tests.conftest import Account
from tests.web.support import browser_for, submit

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
PAYLOADS = (SCRIPT, IMG)
ESCAPED = {
    SCRIPT: "&lt;script&gt;alert(1)&lt;/script&gt;",
    IMG: "&lt;img src=x onerror=alert(1)&gt;",
}
FLASH = re.compile(r'<div class="flash (\w+)" role="status">([^<]*)</div>')


def assert_inert(page: str, payload: str) -> None:
    """The payload is in the page only as escaped text."""
    assert payload not in page
    assert ESCAPED[payload] in page


async def log_in(browser: httpx.AsyncClient, account: Account) -> None:
    response = await submit(
        browser, "/login", {"email": account.email, "password": account.password}
    )
    assert response.status_code == 303, response.text


async def work_in(browser: httpx.AsyncClient, organization_id: str) -> None:
    """Switch the dashboard to `organization_id`, as the sidebar's switcher does."""
    response = await submit(
        browser, "/app/organization/switch", {"organization_id": organization_id}, page="/app"
    )
    assert response.status_code == 303, response.text


@asynccontextmanager
async def dashboard(
    app: FastAPI, account: Account, organization_id: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in as `account`, working in `organization_id` (default: personal)."""
    async with browser_for(app) as browser:
        await log_in(browser, account)
        if organization_id is not None:
            await work_in(browser, organization_id)
        yield browser


async def flash_after(browser: httpx.AsyncClient, response: httpx.Response) -> tuple[str, str]:
    """(kind, message) of the flash a redirect carries, read on the page it leads to."""
    assert response.status_code == 303, response.text
    page = await browser.get(response.headers["location"])
    found = FLASH.search(page.text)
    assert found, page.text
    return found.group(1), found.group(2)
