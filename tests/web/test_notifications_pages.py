"""The notification settings page: each kind a checkbox, saved with the form's CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from saassy.context import AppContext
from saassy.models import User
from saassy.notifications import service
from tests.web.support import browser_for, sign_up, submit
from tests.web.team import flash_after

PAGE = "/app/account/notifications"


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as client:
        yield client


def checked(html: str) -> set[str]:
    return set(re.findall(r'name="([a-z_]+)" value="on" checked', html))


async def preferences(ctx: AppContext, email: str) -> dict[str, bool]:
    async with ctx.sessionmaker() as session:
        user = (await session.execute(User.__table__.select().where(User.email == email))).one()
        chosen = await service.preferences_of(session, user.id)
    return {kind.value: on for kind, on in chosen.items()}


async def test_the_page_shows_the_defaults_and_saves_the_boxes_ticked(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    email = await sign_up(browser)
    account = await browser.get("/app/account")
    assert f'href="{PAGE}"' in account.text
    page = await browser.get(PAGE)
    assert page.status_code == 200
    assert checked(page.text) == {
        "quota_warning",
        "quota_exhausted",
        "webhook_disabled",
        "payment_failed",
    }
    assert "Task failed" in page.text
    assert 'aria-current="page"' in page.text  # under Account in the sidebar

    saved = await submit(browser, PAGE, {"task_failed": "on", "quota_warning": "on"}, page=PAGE)
    assert await flash_after(browser, saved) == ("success", "Notification settings saved.")
    assert checked((await browser.get(PAGE)).text) == {"task_failed", "quota_warning"}
    assert await preferences(ctx, email.lower()) == {
        "task_failed": True,
        "quota_warning": True,
        "quota_exhausted": False,
        "webhook_disabled": False,
        "payment_failed": False,
    }


async def test_saving_needs_the_csrf_token_and_a_session(
    browser: httpx.AsyncClient, ctx: AppContext, app: FastAPI
) -> None:
    email = await sign_up(browser)
    forged = await browser.post(PAGE, data={"task_failed": "on"})
    assert forged.status_code == 403
    assert (await preferences(ctx, email.lower()))["task_failed"] is False
    async with browser_for(app) as stranger:
        assert (await stranger.get(PAGE)).status_code == 303  # to the log-in page
