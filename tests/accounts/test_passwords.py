"""Argon2id: rehash on login when parameters change; unknown accounts look like wrong passwords."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from saassy.config import Settings
from saassy.context import AppContext
from saassy.models import User
from tests.conftest import SignUp

LOGIN = "/api/v1/auth/login"

pytestmark = pytest.mark.production_password_cost


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    # Generous limits: these tests log in many times from one address.
    return settings_factory(
        login_limit_per_account_ip="100/minute",
        login_limit_per_account="100/minute",
        login_limit_per_ip="100/minute",
    )


async def stored_hash(ctx: AppContext, user_id: str) -> str:
    async with ctx.sessionmaker() as session:
        user = await session.get(User, uuid.UUID(user_id))
        assert user is not None
        assert user.password_hash is not None
        return user.password_hash


async def test_passwords_are_stored_as_argon2id_at_the_configured_cost(
    ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    stored = await stored_hash(ctx, account.user_id)
    assert stored.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in stored
    assert account.password not in stored


async def test_login_rehashes_a_password_hashed_with_other_parameters(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    settings_factory: Callable[..., Settings],
) -> None:
    account = await signup()
    older = await settings_factory(password_time_cost=3).password_hasher.hash(account.password)
    async with ctx.sessionmaker() as session, session.begin():
        user = await session.get(User, uuid.UUID(account.user_id))
        assert user is not None
        user.password_hash = older

    response = await client.post(LOGIN, json={"email": account.email, "password": account.password})
    assert response.status_code == 200

    rehashed = await stored_hash(ctx, account.user_id)
    assert rehashed != older
    assert "m=19456,t=2,p=1" in rehashed
    again = await client.post(LOGIN, json={"email": account.email, "password": account.password})
    assert again.status_code == 200
    assert await stored_hash(ctx, account.user_id) == rehashed


async def test_an_unknown_account_looks_like_a_wrong_password(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()

    async def attempt(email: str) -> tuple[float, httpx.Response]:
        started = time.perf_counter()
        response = await client.post(LOGIN, json={"email": email, "password": "wrong password"})
        return time.perf_counter() - started, response

    await attempt(account.email)  # warm up
    wrong, unknown = [], []
    for n in range(9):  # interleaved, so a busy machine slows both alike
        wrong.append(await attempt(account.email))
        unknown.append(await attempt(f"ghost-{n}@example.com"))

    for _, response in wrong + unknown:
        assert response.status_code == 401
        assert response.json() == wrong[0][1].json()
        assert response.headers.get("WWW-Authenticate") == "Bearer"
    assert wrong[0][1].json()["error"]["code"] == "invalid_credentials"
    # Both pay for one Argon2 verification; skipping it for unknown accounts would make the
    # ratio about 0.1. The bounds are loose because CI machines are noisy.
    ratio = statistics.median(t for t, _ in unknown) / statistics.median(t for t, _ in wrong)
    assert 1 / 3 < ratio < 3, ratio
