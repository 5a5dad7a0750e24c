"""Sign-in links, forgotten passwords, e-mail verification and the account page, driven as a
browser drives them, following the links in the e-mails the outbox holds."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from saassy.config import Settings
from saassy.context import AppContext
from saassy.models import BrowserSession, MagicLink
from tests.email.mail import latest_link_token, outbox
from tests.web.support import PASSWORD, Browser, browser_for, sign_up, submit, verify_email

NEW_PASSWORD = "a brand new passphrase"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
URL_ATTRIBUTE = re.compile(r'(?:href|src|action|formaction)="([^"]*)"')


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Small limits, so the limit tests stay short."""
    return settings_factory(magic_link_limit_per_email="2/hour")


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[Browser]:
    async with browser_for(app) as client:
        yield client


@pytest.fixture
def ctx(app: FastAPI) -> AppContext:
    context: AppContext = app.state.ctx
    return context


def assert_token_page(response: httpx.Response, token: str) -> None:
    """The token sits in the form's hidden field only: in no link, and no Referer carries it."""
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.text.count(token) == 1
    assert f'name="token" value="{token}"' in response.text
    for url in URL_ATTRIBUTE.findall(response.text):
        assert token not in url
    assert "<script>" not in response.text  # no inline script: the form posts the token


async def signed_in(browser: httpx.AsyncClient) -> bool:
    return (await browser.get("/app")).status_code == 200


# Magic links


async def test_a_magic_link_signs_the_browser_in_once(
    browser: Browser, ctx: AppContext, app: FastAPI
) -> None:
    form = await browser.get("/login/magic")
    assert form.status_code == 200
    assert 'action="/login/magic"' in form.text
    sent = await submit(
        browser, "/login/magic", {"email": "Link.User@Example.com"}, page="/login/magic"
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/login/magic"
    assert "a sign-in link is on its way" in (await browser.get("/login/magic")).text

    token = await latest_link_token(ctx, "link.user@example.com", "/login/magic")
    # Opening the page (twice, as a mail scanner then a person would) uses nothing up.
    for _ in range(2):
        page = await browser.get(f"/login/magic?token={token}")
        assert page.status_code == 200
        assert_token_page(page, token)
    done = await submit(browser, "/login/magic/verify", {"token": token}, page="/login/magic")
    assert done.status_code == 303
    assert done.headers["location"] == "/app"
    home = await browser.get("/app")
    assert home.status_code == 200
    assert "link.user@example.com" in home.text
    assert "not verified" not in home.text  # following the link verified the address

    async with browser_for(app) as other:
        again = await submit(other, "/login/magic/verify", {"token": token}, page="/login/magic")
        assert again.status_code == 401
        assert "already used" in again.text
        assert not await signed_in(other)


async def test_known_and_unknown_addresses_get_the_same_page(
    browser: Browser, app: FastAPI
) -> None:
    await sign_up(browser, "known@example.com")
    async with browser_for(app) as anonymous:
        known = await submit(
            anonymous, "/login/magic", {"email": "known@example.com"}, page="/login/magic"
        )
        known_page = (await anonymous.get("/login/magic")).text
        unknown = await submit(
            anonymous, "/login/magic", {"email": "unknown@example.com"}, page="/login/magic"
        )
        unknown_page = (await anonymous.get("/login/magic")).text
    assert known.status_code == unknown.status_code == 303
    assert known.headers["location"] == unknown.headers["location"]
    assert re.sub(r'value="[0-9a-f]{64}"', "", known_page) == re.sub(
        r'value="[0-9a-f]{64}"', "", unknown_page
    )


async def test_an_expired_magic_link_is_refused(browser: Browser, ctx: AppContext) -> None:
    await submit(browser, "/login/magic", {"email": "late@example.com"}, page="/login/magic")
    token = await latest_link_token(ctx, "late@example.com", "/login/magic")
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(MagicLink).values(expires_at=MagicLink.created_at))
    response = await submit(browser, "/login/magic/verify", {"token": token}, page="/login/magic")
    assert response.status_code == 401
    assert "expired" in response.text
    assert token not in response.text
    assert not await signed_in(browser)


async def test_magic_link_requests_are_throttled(browser: Browser) -> None:
    for _ in range(2):
        sent = await submit(
            browser, "/login/magic", {"email": "a@example.com"}, page="/login/magic"
        )
        assert sent.status_code == 303
    limited = await submit(browser, "/login/magic", {"email": "a@example.com"}, page="/login/magic")
    assert limited.status_code == 429
    assert "Too many sign-in links" in limited.text
    assert int(limited.headers["Retry-After"]) > 0
    assert 'value="a@example.com"' in limited.text


async def test_token_forms_need_the_csrf_token(browser: Browser, ctx: AppContext) -> None:
    await submit(browser, "/login/magic", {"email": "csrf@example.com"}, page="/login/magic")
    token = await latest_link_token(ctx, "csrf@example.com", "/login/magic")
    for action in ("/login/magic/verify", "/reset-password", "/verify-email", "/login/magic"):
        refused = await browser.post(action, data={"token": token, "email": "x@example.com"})
        assert refused.status_code == 403, action
    # The refused post did not use the link up.
    done = await submit(browser, "/login/magic/verify", {"token": token}, page="/login/magic")
    assert done.status_code == 303


# Forgotten passwords


async def test_a_password_reset_ends_every_session(app: FastAPI, ctx: AppContext) -> None:
    async with browser_for(app) as owner, browser_for(app) as forgetful:
        email = await sign_up(owner)
        sent = await submit(
            forgetful, "/forgot-password", {"email": email}, page="/forgot-password"
        )
        assert sent.status_code == 303
        assert "a link to reset its password" in (await forgetful.get("/forgot-password")).text
        token = await latest_link_token(ctx, email, "/reset-password")
        page = await forgetful.get(f"/reset-password?token={token}")
        assert page.status_code == 200
        assert_token_page(page, token)

        short = await submit(
            forgetful,
            "/reset-password",
            {"token": token, "password": "short"},
            page="/forgot-password",
        )
        assert short.status_code == 422
        assert 'id="f-password-error"' in short.text
        assert f'name="token" value="{token}"' in short.text  # the link still works

        done = await submit(
            forgetful,
            "/reset-password",
            {"token": token, "password": NEW_PASSWORD},
            page="/forgot-password",
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/login"
        assert not await signed_in(owner)

        again = await submit(
            forgetful,
            "/reset-password",
            {"token": token, "password": "another passphrase"},
            page="/forgot-password",
        )
        assert again.status_code == 401
        assert "already used" in again.text

        old = await submit(forgetful, "/login", {"email": email, "password": PASSWORD})
        assert old.status_code == 401
        new = await submit(forgetful, "/login", {"email": email, "password": NEW_PASSWORD})
        assert new.status_code == 303


async def test_forgot_password_answers_the_same_for_unknown_addresses(
    browser: Browser, ctx: AppContext
) -> None:
    sent = await submit(
        browser, "/forgot-password", {"email": "nobody@example.com"}, page="/forgot-password"
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/forgot-password"
    assert await outbox(ctx, "nobody@example.com") == []
    bad = await submit(
        browser, "/forgot-password", {"email": "not-an-address"}, page="/forgot-password"
    )
    assert bad.status_code == 422
    assert 'id="f-email-error"' in bad.text


# E-mail verification


async def test_the_banner_stays_until_the_address_is_verified(
    browser: Browser, ctx: AppContext
) -> None:
    email = await sign_up(browser, verified=False)
    home = await browser.get("/app")
    assert "not verified yet" in home.text
    assert 'action="/app/account/verify-email/resend"' in home.text
    assert "not verified" in (await browser.get("/app/account")).text

    resent = await submit(browser, "/app/account/verify-email/resend", page="/app")
    assert resent.status_code == 303
    assert len([m for m in await outbox(ctx, email) if "Confirm" in m.subject]) == 2

    token = await latest_link_token(ctx, email, "/verify-email")
    page = await browser.get(f"/verify-email?token={token}")
    assert_token_page(page, token)
    assert "not verified yet" in (await browser.get("/app")).text  # GET verified nothing

    done = await verify_email(browser, email)
    assert done.headers["location"] == "/app/account"
    account = await browser.get("/app/account")
    assert "not verified" not in account.text
    assert "verified" in account.text
    again = await submit(browser, "/verify-email", {"token": token}, page="/app")
    assert again.status_code == 401


async def test_resending_is_throttled(browser: Browser) -> None:
    await sign_up(browser, verified=False)
    for _ in range(2):
        assert (
            await submit(browser, "/app/account/verify-email/resend", page="/app")
        ).status_code == 303
    limited = await submit(browser, "/app/account/verify-email/resend", page="/app")
    assert limited.status_code == 429


# The account page


async def api_login(app: FastAPI, email: str, password: str) -> str:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("192.0.2.50", 51000)),
        base_url="http://saassy.test",
    ) as client:
        response = await client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        refresh: str = response.json()["refresh_token"]
        return refresh


async def refresh_works(app: FastAPI, refresh_token: str) -> bool:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://saassy.test"
    ) as client:
        response = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})
        return response.status_code == 200


async def test_the_account_page_shows_the_profile(browser: Browser) -> None:
    email = await sign_up(browser)
    page = await browser.get("/app/account")
    assert page.status_code == 200
    assert email in page.text
    assert "Member since" in page.text
    assert 'id="f-current_password"' in page.text
    assert "Change password" in page.text


async def test_changing_the_password_ends_the_other_sessions(app: FastAPI) -> None:
    async with browser_for(app) as here, browser_for(app) as elsewhere:
        email = await sign_up(here)
        assert (
            await submit(elsewhere, "/login", {"email": email, "password": PASSWORD})
        ).status_code == 303
        refresh = await api_login(app, email, PASSWORD)

        wrong = await submit(
            here,
            "/app/account/password",
            {"current_password": "not it", "password": NEW_PASSWORD},
            page="/app/account",
        )
        assert wrong.status_code == 403
        assert 'id="f-current_password-error"' in wrong.text
        assert await signed_in(elsewhere)

        done = await submit(
            here,
            "/app/account/password",
            {"current_password": PASSWORD, "password": NEW_PASSWORD},
            page="/app/account",
        )
        assert done.status_code == 303
        assert await signed_in(here)
        assert not await signed_in(elsewhere)
        assert not await refresh_works(app, refresh)
        login = await submit(elsewhere, "/login", {"email": email, "password": NEW_PASSWORD})
        assert login.status_code == 303


async def test_a_link_only_account_can_set_a_password(browser: Browser, ctx: AppContext) -> None:
    await submit(browser, "/login/magic", {"email": "nopass@example.com"}, page="/login/magic")
    token = await latest_link_token(ctx, "nopass@example.com", "/login/magic")
    await submit(browser, "/login/magic/verify", {"token": token}, page="/login/magic")
    page = await browser.get("/app/account")
    assert "Set a password" in page.text
    assert 'id="f-current_password"' not in page.text
    done = await submit(
        browser, "/app/account/password", {"password": NEW_PASSWORD}, page="/app/account"
    )
    assert done.status_code == 303
    assert "Change password" in (await browser.get("/app/account")).text
    await submit(browser, "/logout", page="/app")
    login = await submit(
        browser, "/login", {"email": "nopass@example.com", "password": NEW_PASSWORD}
    )
    assert login.status_code == 303


@pytest.mark.parametrize("payload", [SCRIPT, IMG])
async def test_sessions_list_and_log_out_one(app: FastAPI, ctx: AppContext, payload: str) -> None:
    async with browser_for(app) as here, browser_for(app, "203.0.113.9") as phone:
        here.headers["user-agent"] = (
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
        )
        phone.headers["user-agent"] = f"Evil {payload}"
        email = await sign_up(here)
        assert (
            await submit(phone, "/login", {"email": email, "password": PASSWORD})
        ).status_code == 303

        page = (await here.get("/app/account")).text
        assert "Firefox on Linux" in page
        assert "this session" in page
        assert "203.0.113.9" in page
        assert payload not in page
        assert payload.replace("<", "&lt;").replace(">", "&gt;") in page

        async with ctx.sessionmaker() as session:
            phone_session = (
                await session.execute(
                    select(BrowserSession).where(BrowserSession.ip == "203.0.113.9")
                )
            ).scalar_one()
        done = await submit(
            here, f"/app/account/sessions/{phone_session.id}/logout", page="/app/account"
        )
        assert done.status_code == 303
        assert not await signed_in(phone)
        assert await signed_in(here)
        assert "203.0.113.9" not in (await here.get("/app/account")).text


async def test_another_users_session_cannot_be_logged_out(app: FastAPI, ctx: AppContext) -> None:
    async with browser_for(app) as mine, browser_for(app, "198.51.100.7") as theirs:
        await sign_up(mine)
        await sign_up(theirs)
        async with ctx.sessionmaker() as session:
            their_session = (
                await session.execute(
                    select(BrowserSession).where(BrowserSession.ip == "198.51.100.7")
                )
            ).scalar_one()
        refused = await submit(
            mine, f"/app/account/sessions/{their_session.id}/logout", page="/app/account"
        )
        assert refused.status_code == 404
        assert await signed_in(theirs)


async def test_log_out_everywhere_else(app: FastAPI) -> None:
    async with browser_for(app) as here, browser_for(app) as elsewhere:
        email = await sign_up(here)
        await submit(elsewhere, "/login", {"email": email, "password": PASSWORD})
        refresh = await api_login(app, email, PASSWORD)
        missing_csrf = await here.post("/app/account/sessions/logout-others")
        assert missing_csrf.status_code == 403
        assert await signed_in(elsewhere)

        done = await submit(here, "/app/account/sessions/logout-others", page="/app/account")
        assert done.status_code == 303
        assert await signed_in(here)
        assert not await signed_in(elsewhere)
        assert not await refresh_works(app, refresh)


async def test_the_account_page_needs_a_session(browser: Browser) -> None:
    response = await browser.get("/app/account")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
