"""Magic links: same answer for every address, single use, expiry, sign-up on first use."""

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
from saassy.models import MagicLink, User
from tests.conftest import SignUp, client_for
from tests.email.mail import Mail, latest_magic_token, outbox

REQUEST = "/api/v1/auth/magic-link"
VERIFY = "/api/v1/auth/magic-link/verify"


async def sign_in_mails(ctx: AppContext, to: str) -> list[Mail]:
    """The sign-in links sent to `to` (a password sign-up also gets a verification e-mail)."""
    return [mail for mail in await outbox(ctx, to) if "sign-in link" in mail.subject]


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Small limits, so the limit tests stay short."""
    return settings_factory(magic_link_limit_per_email="2/hour", login_limit_per_ip="4/minute")


async def test_known_and_unknown_addresses_get_the_same_answer(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    known = await client.post(REQUEST, json={"email": account.email})
    unknown = await client.post(REQUEST, json={"email": "nobody-yet@example.com"})

    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert known.headers.keys() == unknown.headers.keys()
    # Both addresses get a link: the unknown one signs up by following it.
    assert len(await sign_in_mails(ctx, account.email)) == 1
    assert len(await sign_in_mails(ctx, "nobody-yet@example.com")) == 1


async def test_the_link_signs_in_once_and_is_stored_only_hashed(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    await client.post(REQUEST, json={"email": account.email.upper()})
    (mail,) = await sign_in_mails(ctx, account.email)
    token = await latest_magic_token(ctx, account.email)
    assert f"{ctx.settings.base_url}/login/magic?token={token}" in mail.body
    assert f"code where you asked for the link: {token}" in mail.body
    async with ctx.sessionmaker() as session:
        link = (
            await session.execute(select(MagicLink).where(MagicLink.purpose == "sign_in"))
        ).scalar_one()
    assert link.token_hash == token_digest(token)
    assert token not in {link.token_hash, link.email}

    first = await client.post(VERIFY, json={"token": token})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["user"] == {"id": account.user_id, "email": account.email}
    assert body["organization"]["id"] == account.organization_id
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    ).status_code == 200

    second = await client.post(VERIFY, json={"token": token})
    assert second.status_code == 401
    assert second.json()["error"]["code"] == "magic_link_used"


async def test_an_unknown_address_signs_up_by_following_its_link(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await client.post(REQUEST, json={"email": "New.Person@Example.com"})
    token = await latest_magic_token(ctx, "new.person@example.com")

    response = await client.post(VERIFY, json={"token": token})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["email"] == "new.person@example.com"
    assert body["organization"]["plan"] == "free"
    async with ctx.sessionmaker() as session:
        user = (
            await session.execute(select(User).where(User.email == "new.person@example.com"))
        ).scalar_one()
    assert user.password_hash is None
    assert user.email_verified_at is not None
    # Passwordless: no password opens this account.
    login = await client.post(
        "/api/v1/auth/login", json={"email": "new.person@example.com", "password": "x" * 12}
    )
    assert login.status_code == 401


async def test_an_expired_link_fails(
    settings_factory: Callable[..., Settings],
) -> None:
    app = create_app(settings_factory(magic_link_ttl=timedelta(seconds=-1)), background=False)
    async with app.router.lifespan_context(app), client_for(app) as client:
        await client.post(REQUEST, json={"email": "late@example.com"})
        token = await latest_magic_token(app.state.ctx, "late@example.com")
        response = await client.post(VERIFY, json={"token": token})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "magic_link_expired"


@pytest.mark.parametrize("token", ["never-issued", "A" * 43])
async def test_an_unknown_token_fails(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post(VERIFY, json={"token": token})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "magic_link_invalid"


async def test_requests_are_limited_per_address(client: httpx.AsyncClient, app: FastAPI) -> None:
    for _ in range(2):
        assert (await client.post(REQUEST, json={"email": "a@example.com"})).status_code == 202
    limited = await client.post(REQUEST, json={"email": "A@example.com"})
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    # Another address from the same IP is still served.
    assert (await client.post(REQUEST, json={"email": "b@example.com"})).status_code == 202


async def test_requests_are_limited_per_ip(app: FastAPI) -> None:
    async with client_for(app, "198.51.100.1") as client:
        for n in range(4):
            response = await client.post(REQUEST, json={"email": f"user{n}@example.com"})
            assert response.status_code == 202
        limited = await client.post(REQUEST, json={"email": "user9@example.com"})
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers
    async with client_for(app, "198.51.100.2") as elsewhere:
        response = await elsewhere.post(REQUEST, json={"email": "user9@example.com"})
    assert response.status_code == 202
