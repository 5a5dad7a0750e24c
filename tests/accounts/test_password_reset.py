"""Forgotten passwords over the API: same answer for every address, a single-use expiring link
stored hashed, and a reset that ends every session of the account."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from saassy.app import create_app
from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.security import token_digest
from saassy.models import MagicLink
from tests.conftest import SignUp, client_for
from tests.email.mail import latest_link_token, outbox

FORGOT = "/api/v1/auth/password/forgot"
RESET = "/api/v1/auth/password/reset"
NEW_PASSWORD = "a brand new passphrase"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(magic_link_limit_per_email="2/hour", login_limit_per_ip="4/minute")


async def reset_mails(ctx: AppContext, to: str) -> list[str]:
    return [m.body for m in await outbox(ctx, to) if m.subject.startswith("Reset your")]


async def test_known_and_unknown_addresses_get_the_same_answer(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    known = await client.post(FORGOT, json={"email": account.email})
    unknown = await client.post(FORGOT, json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert known.headers.keys() == unknown.headers.keys()
    assert len(await reset_mails(ctx, account.email)) == 1
    assert await outbox(ctx, "nobody@example.com") == []  # no account, no e-mail


async def test_a_reset_sets_the_password_once_and_ends_every_session(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    await client.post(FORGOT, json={"email": account.email.upper()})
    token = await latest_link_token(ctx, account.email, "/reset-password")
    (body,) = await reset_mails(ctx, account.email)
    assert f"{ctx.settings.base_url}/reset-password?token={token}" in body
    async with ctx.sessionmaker() as session:
        stored = (
            await session.execute(select(MagicLink).where(MagicLink.purpose == "reset_password"))
        ).scalar_one()
    assert stored.token_hash == token_digest(token)

    reset = await client.post(RESET, json={"token": token, "password": NEW_PASSWORD})
    assert reset.status_code == 204, reset.text
    # The refresh family from sign-up is revoked; the old password is gone, the new one works.
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refresh.status_code == 401
    login = {"email": account.email, "password": account.password}
    assert (await client.post("/api/v1/auth/login", json=login)).status_code == 401
    login["password"] = NEW_PASSWORD
    assert (await client.post("/api/v1/auth/login", json=login)).status_code == 200

    again = await client.post(RESET, json={"token": token, "password": "yet another one"})
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "password_reset_used"


async def test_a_short_password_is_refused_and_keeps_the_link(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    await client.post(FORGOT, json={"email": account.email})
    token = await latest_link_token(ctx, account.email, "/reset-password")
    short = await client.post(RESET, json={"token": token, "password": "short"})
    assert short.status_code == 422
    ok = await client.post(RESET, json={"token": token, "password": NEW_PASSWORD})
    assert ok.status_code == 204


async def test_an_expired_link_fails(settings_factory: Callable[..., Settings]) -> None:
    app = create_app(settings_factory(password_reset_ttl=timedelta(seconds=-1)), background=False)
    async with app.router.lifespan_context(app), client_for(app) as client:
        ctx: AppContext = app.state.ctx
        signed_up = await client.post(
            "/api/v1/auth/signup", json={"email": "late@example.com", "password": "x" * 12}
        )
        assert signed_up.status_code == 201
        await client.post(FORGOT, json={"email": "late@example.com"})
        token = await latest_link_token(ctx, "late@example.com", "/reset-password")
        response = await client.post(RESET, json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "password_reset_expired"


async def test_a_sign_in_link_cannot_reset_a_password(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    await client.post("/api/v1/auth/magic-link", json={"email": account.email})
    token = await latest_link_token(ctx, account.email, "/login/magic")
    response = await client.post(RESET, json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "password_reset_invalid"
    # ...and the sign-in link still works for what it was sent for.
    verify = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert verify.status_code == 200


async def test_requests_are_limited_per_address(client: httpx.AsyncClient, app: FastAPI) -> None:
    for _ in range(2):
        assert (await client.post(FORGOT, json={"email": "a@example.com"})).status_code == 202
    limited = await client.post(FORGOT, json={"email": "A@example.com"})
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert (await client.post(FORGOT, json={"email": "b@example.com"})).status_code == 202


async def test_password_change_needs_the_current_password_and_ends_other_sessions(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    change = "/api/v1/auth/password/change"
    wrong = await client.post(
        change,
        json={"current_password": "not it at all", "password": NEW_PASSWORD},
        headers=account.headers,
    )
    assert wrong.status_code == 403
    assert wrong.json()["error"]["code"] == "wrong_password"
    missing = await client.post(change, json={"password": NEW_PASSWORD}, headers=account.headers)
    assert missing.status_code == 403
    ok = await client.post(
        change,
        json={"current_password": account.password, "password": NEW_PASSWORD},
        headers=account.headers,
    )
    assert ok.status_code == 204
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": account.refresh_token}
    )
    assert refresh.status_code == 401
