"""Account pre-hijacking: someone signs up with another person's address and a password they
know; when the address's owner first proves it theirs (sign-in link, password reset), whoever
signed up is shut out: their sessions end and their password no longer works."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from saassy.context import AppContext
from tests.conftest import SignUp
from tests.email.mail import latest_link_token, latest_magic_token, outbox
from tests.web.support import PASSWORD, browser_for, sign_up, submit

VICTIM = "victim@example.com"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"


async def _api_login(client: httpx.AsyncClient, password: str) -> int:
    response = await client.post(LOGIN, json={"email": VICTIM, "password": password})
    return response.status_code


async def _owner_signs_in_by_api_link(client: httpx.AsyncClient, ctx: AppContext) -> str:
    assert (await client.post("/api/v1/auth/magic-link", json={"email": VICTIM})).status_code == 202
    token = await latest_magic_token(ctx, VICTIM)
    response = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert response.status_code == 200, response.text
    access: str = response.json()["access_token"]
    return access


async def test_a_sign_in_link_shuts_out_whoever_signed_up_before_the_address_was_proven(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, app: FastAPI
) -> None:
    attacker = await signup(VICTIM, "attacker's password", verified=False)
    async with browser_for(app) as attackers_browser:
        signed_in = await submit(
            attackers_browser, "/login", {"email": VICTIM, "password": "attacker's password"}
        )
        assert signed_in.status_code == 303
        assert (await attackers_browser.get("/app")).status_code == 200

        access = await _owner_signs_in_by_api_link(client, ctx)

        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {access}"})
        assert me.json()["email_verified"] is True
        # The attacker's refresh-token family and browser session are over...
        refreshed = await client.post(REFRESH, json={"refresh_token": attacker.refresh_token})
        assert refreshed.status_code == 401
        page = await attackers_browser.get("/app")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login")
    # ...and their password opens nothing any more.
    assert await _api_login(client, "attacker's password") == 401


async def test_the_dashboards_sign_in_link_shuts_them_out_too(
    client: httpx.AsyncClient, ctx: AppContext, app: FastAPI
) -> None:
    async with browser_for(app) as attackers_browser, browser_for(app) as owners_browser:
        await sign_up(attackers_browser, VICTIM, verified=False)
        sent = await submit(owners_browser, "/login/magic", {"email": VICTIM}, page="/login/magic")
        assert sent.status_code == 303
        token = await latest_magic_token(ctx, VICTIM)
        followed = await submit(
            owners_browser,
            "/login/magic/verify",
            {"token": token},
            page=f"/login/magic?token={token}",
        )
        assert followed.status_code == 303, followed.text
        assert (await owners_browser.get("/app")).status_code == 200
        # The owner has no password now, and may set one on the account page.
        account = await owners_browser.get("/app/account")
        assert "Current password" not in account.text

        assert (await attackers_browser.get("/app")).status_code == 303
    assert await _api_login(client, PASSWORD) == 401


async def test_a_password_reset_shuts_them_out_too(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    attacker = await signup(VICTIM, "attacker's password", verified=False)
    await client.post("/api/v1/auth/password/forgot", json={"email": VICTIM})
    token = await latest_link_token(ctx, VICTIM, "/reset-password")
    reset = await client.post(
        "/api/v1/auth/password/reset", json={"token": token, "password": "the owner's password"}
    )
    assert reset.status_code == 204, reset.text

    refreshed = await client.post(REFRESH, json={"refresh_token": attacker.refresh_token})
    assert refreshed.status_code == 401
    assert await _api_login(client, "attacker's password") == 401
    assert await _api_login(client, "the owner's password") == 200


async def test_a_verified_account_keeps_its_password_and_sessions_on_a_sign_in_link(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup(VICTIM, "the owner's password")
    await _owner_signs_in_by_api_link(client, ctx)

    refreshed = await client.post(REFRESH, json={"refresh_token": owner.refresh_token})
    assert refreshed.status_code == 200
    assert await _api_login(client, "the owner's password") == 200


async def test_following_the_verification_link_confirms_the_sign_up_as_it_is(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    """The verification link is sent because of a password sign-up and is, in the usual case,
    followed by the person who signed up: it keeps their password and sessions. Its e-mail
    says so, and tells someone who did not sign up to use a sign-in link instead."""
    account = await signup(VICTIM, "a password", verified=False)
    mails = [m for m in await _outbox(ctx) if "Confirm your e-mail" in m[0]]
    (body,) = [m[1] for m in mails]
    assert "sign-in link" in body
    token = await latest_link_token(ctx, VICTIM, "/verify-email")
    assert (
        await client.post("/api/v1/auth/verify-email", json={"token": token})
    ).status_code == 204
    refreshed = await client.post(REFRESH, json={"refresh_token": account.refresh_token})
    assert refreshed.status_code == 200
    assert await _api_login(client, "a password") == 200


async def _outbox(ctx: AppContext) -> list[tuple[str, str]]:
    return [(mail.subject, mail.body) for mail in await outbox(ctx, VICTIM)]
