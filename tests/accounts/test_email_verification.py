"""E-mail verification: a password sign-up is unverified until its link is followed; until then
the account may not create API keys nor invite members."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import update

from saassy.config import Settings
from saassy.context import AppContext
from saassy.models import MagicLink
from tests.conftest import SignUp
from tests.email.mail import latest_link_token, outbox

VERIFY = "/api/v1/auth/verify-email"
RESEND = "/api/v1/auth/verify-email/resend"
PER_ADDRESS = 2


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(magic_link_limit_per_email=f"{PER_ADDRESS}/hour")


async def me(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, object]:
    response = await client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


async def test_sign_up_sends_a_link_that_verifies_the_address_once(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup(verified=False)
    (mail,) = await outbox(ctx, account.email)
    assert mail.subject.startswith("Confirm your e-mail address")
    assert (await me(client, account.headers))["email_verified"] is False

    token = await latest_link_token(ctx, account.email, "/verify-email")
    assert (await client.post(VERIFY, json={"token": token})).status_code == 204
    assert (await me(client, account.headers))["email_verified"] is True
    again = await client.post(VERIFY, json={"token": token})
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "email_verification_used"


async def test_an_expired_or_unknown_link_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup(verified=False)
    token = await latest_link_token(ctx, account.email, "/verify-email")
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(MagicLink).values(expires_at=MagicLink.created_at))
    expired = await client.post(VERIFY, json={"token": token})
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "email_verification_expired"
    unknown = await client.post(VERIFY, json={"token": "never-issued"})
    assert unknown.json()["error"]["code"] == "email_verification_invalid"
    assert (await me(client, account.headers))["email_verified"] is False


async def test_an_unverified_account_cannot_create_api_keys_or_invite(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup(verified=False)
    key = await client.post("/api/v1/api-keys", json={"name": "ci"}, headers=account.headers)
    assert key.status_code == 403
    assert key.json()["error"]["code"] == "email_unverified"
    invite = await client.post(
        f"/api/v1/organizations/{account.organization_id}/invitations",
        json={"email": "friend@example.com", "role": "member"},
        headers=account.headers,
    )
    assert invite.status_code == 403
    assert invite.json()["error"]["code"] == "email_unverified"
    # Everything else works: e.g. reading its own organization.
    org = await client.get(
        f"/api/v1/organizations/{account.organization_id}", headers=account.headers
    )
    assert org.status_code == 200

    token = await latest_link_token(ctx, account.email, "/verify-email")
    await client.post(VERIFY, json={"token": token})
    key = await client.post("/api/v1/api-keys", json={"name": "ci"}, headers=account.headers)
    assert key.status_code == 201


async def test_resend_sends_a_new_link_and_is_throttled(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup(verified=False)
    for _ in range(PER_ADDRESS):
        assert (await client.post(RESEND, headers=account.headers)).status_code == 202
    limited = await client.post(RESEND, headers=account.headers)
    assert limited.status_code == 429
    assert len(await outbox(ctx, account.email)) == 1 + PER_ADDRESS
    # Any link sent verifies.
    token = await latest_link_token(ctx, account.email, "/verify-email")
    assert (await client.post(VERIFY, json={"token": token})).status_code == 204


async def test_resend_needs_a_signed_in_user(client: httpx.AsyncClient) -> None:
    assert (await client.post(RESEND)).status_code == 401


async def test_a_magic_link_sign_in_verifies_the_address(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup(verified=False)
    await client.post("/api/v1/auth/magic-link", json={"email": account.email})
    token = await latest_link_token(ctx, account.email, "/login/magic")
    signed_in = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert signed_in.status_code == 200
    assert (await me(client, account.headers))["email_verified"] is True
