"""The account page's "Delete your account": what goes, re-authentication, then signed out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from saassy.models import User
from saassy.privacy.erasure_jobs import AccountEraser
from tests.web.support import PASSWORD, Browser, browser_for, sign_up, submit


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[Browser]:
    async with browser_for(app) as client:
        yield client


async def test_the_page_lists_what_goes_and_asks_for_the_password(browser: Browser) -> None:
    await sign_up(browser, organization="Ada's lab")
    page = await browser.get("/app/account")
    assert 'id="delete-heading"' in page.text
    assert "Ada&#39;s lab" in page.text
    assert 'action="/app/account/delete"' in page.text
    assert 'id="f-delete_password"' in page.text
    assert 'data-confirm="#delete-dialog"' in page.text


async def test_a_wrong_password_keeps_the_account(browser: Browser) -> None:
    email = await sign_up(browser)
    refused = await submit(
        browser, "/app/account/delete", {"delete_password": "not it"}, page="/app/account"
    )
    assert refused.status_code == 403
    assert 'id="f-delete_password-error"' in refused.text
    assert (await browser.get("/app/account")).status_code == 200
    async with browser.ctx.sessionmaker() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        assert user.deletion_requested_at is None


async def test_deleting_signs_out_and_says_it_is_in_progress(browser: Browser) -> None:
    email = await sign_up(browser)
    done = await submit(
        browser, "/app/account/delete", {"delete_password": PASSWORD}, page="/app/account"
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/account-deleted"
    landing = await browser.get("/account-deleted")
    assert "Your account is being deleted" in landing.text
    assert (await browser.get("/app/account")).status_code in (303, 401)
    login = await submit(browser, "/login", {"email": email, "password": PASSWORD})
    assert login.status_code == 401

    ctx = browser.ctx
    assert len(await AccountEraser(ctx.sessionmaker, ctx.settings, ctx.storage).erase_due()) == 1
    async with ctx.sessionmaker() as session:
        assert await session.scalar(select(User).where(User.email == email)) is None
