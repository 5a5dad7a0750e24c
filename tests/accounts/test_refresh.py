"""Refresh-token rotation, reuse detection and logout."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select

from saassy.context import AppContext
from saassy.kit.security import token_digest
from saassy.kit.time import utcnow
from saassy.models import RefreshToken, User
from tests.conftest import SignUp

REFRESH = "/api/v1/auth/refresh"


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(REFRESH, json={"refresh_token": token})


async def family_of(ctx: AppContext, token: str) -> list[RefreshToken]:
    async with ctx.sessionmaker() as session:
        family_id = (
            await session.execute(
                select(RefreshToken.family_id).where(RefreshToken.token_hash == token_digest(token))
            )
        ).scalar_one()
        rows = await session.execute(
            select(RefreshToken).where(RefreshToken.family_id == family_id)
        )
        return list(rows.scalars())


async def test_refresh_answers_a_new_pair_and_spends_the_old_token(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    response = await refresh(client, account.refresh_token)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert body["user"] == {"id": account.user_id, "email": account.email}
    assert body["organization"]["id"] == account.organization_id
    assert body["refresh_token"] != account.refresh_token
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200

    family = {row.token_hash: row for row in await family_of(ctx, account.refresh_token)}
    assert set(family) == {token_digest(account.refresh_token), token_digest(body["refresh_token"])}
    assert family[token_digest(account.refresh_token)].used_at is not None
    assert family[token_digest(body["refresh_token"])].used_at is None


async def test_reusing_a_spent_token_revokes_the_whole_family(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    second = (await refresh(client, account.refresh_token)).json()["refresh_token"]
    newest = (await refresh(client, second)).json()["refresh_token"]

    reuse = await refresh(client, account.refresh_token)
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "refresh_token_reused"
    assert reuse.headers["WWW-Authenticate"] == "Bearer"

    # The thief's (or the owner's) newest token dies with the family.
    after = await refresh(client, newest)
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "refresh_token_revoked"
    assert all(row.revoked_at is not None for row in await family_of(ctx, newest))


async def test_reuse_leaves_other_sessions_of_the_user_alone(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    login = await client.post(
        "/api/v1/auth/login", json={"email": account.email, "password": account.password}
    )
    other_session = login.json()["refresh_token"]
    await refresh(client, account.refresh_token)
    assert (await refresh(client, account.refresh_token)).status_code == 401

    assert (await refresh(client, other_session)).status_code == 200


async def test_unknown_and_expired_refresh_tokens_are_refused(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    unknown = await refresh(client, "not-a-token-we-ever-issued")
    assert unknown.status_code == 401
    assert unknown.json()["error"]["code"] == "invalid_refresh_token"

    account = await signup()
    async with ctx.sessionmaker() as session, session.begin():
        token = (
            await session.execute(
                select(RefreshToken).where(
                    RefreshToken.token_hash == token_digest(account.refresh_token)
                )
            )
        ).scalar_one()
        token.expires_at = utcnow() - timedelta(seconds=1)
    expired = await refresh(client, account.refresh_token)
    assert expired.status_code == 401
    assert expired.json()["error"]["code"] == "refresh_token_expired"


async def test_logout_revokes_the_family(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    newest = (await refresh(client, account.refresh_token)).json()["refresh_token"]

    response = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": account.refresh_token}
    )
    assert response.status_code == 204
    assert response.content == b""

    after = await refresh(client, newest)
    assert after.status_code == 401
    assert after.json()["error"]["code"] == "refresh_token_revoked"
    assert all(row.revoked_at is not None for row in await family_of(ctx, newest))


async def test_logout_with_an_unknown_token_still_answers_204(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/logout", json={"refresh_token": "unknown-token"})
    assert response.status_code == 204


async def test_a_disabled_user_cannot_refresh(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    async with ctx.sessionmaker() as session, session.begin():
        user = await session.get(User, uuid.UUID(account.user_id))
        assert user is not None
        user.disabled_at = utcnow()
    response = await refresh(client, account.refresh_token)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "refresh_token_revoked"
