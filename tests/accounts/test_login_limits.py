"""Login limits per (account, IP), per account and per IP; the owner still gets in."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI

from saassy.app import create_app
from saassy.config import Settings
from tests.conftest import SignUp, client_for
from tests.services import REDIS_URL, require

LOGIN = "/api/v1/auth/login"
WRONG = "not the password"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(
        login_limit_per_account_ip="3/15 minutes",
        login_limit_per_account="6/hour",
        login_limit_per_ip="8/minute",
    )


async def login(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, json={"email": email, "password": password})


async def test_guessing_from_one_address_is_stopped_but_the_owner_gets_in_from_another(
    app: FastAPI, signup: SignUp
) -> None:
    account = await signup()
    async with client_for(app, "198.51.100.7") as attacker:
        for _ in range(3):
            assert (await login(attacker, account.email, WRONG)).status_code == 401
        limited = await login(attacker, account.email, WRONG)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) > 0
        # The right password does not help from the locked-out address either.
        assert (await login(attacker, account.email, account.password)).status_code == 429

    async with client_for(app, "192.0.2.44") as owner:
        response = await login(owner, account.email, account.password)
    assert response.status_code == 200, response.text


async def test_a_success_clears_the_failures_of_that_address(app: FastAPI, signup: SignUp) -> None:
    account = await signup()
    async with client_for(app, "198.51.100.8") as client:
        for _ in range(2):
            assert (await login(client, account.email, WRONG)).status_code == 401
        assert (await login(client, account.email, account.password)).status_code == 200
        for _ in range(3):
            assert (await login(client, account.email, WRONG)).status_code == 401
        assert (await login(client, account.email, WRONG)).status_code == 429


async def test_distributed_guessing_of_one_account_is_limited(app: FastAPI, signup: SignUp) -> None:
    account = await signup()
    for n in range(3):
        async with client_for(app, f"198.51.100.{20 + n}") as client:
            for _ in range(2):
                assert (await login(client, account.email, WRONG)).status_code == 401
    async with client_for(app, "198.51.100.99") as client:
        limited = await login(client, account.email, WRONG)
    assert limited.status_code == 429
    assert "Retry-After" in limited.headers


async def test_one_address_trying_many_accounts_is_limited(app: FastAPI) -> None:
    async with client_for(app, "198.51.100.50") as client:
        for n in range(8):
            assert (await login(client, f"victim{n}@example.com", WRONG)).status_code == 401
        limited = await login(client, "victim99@example.com", WRONG)
    assert limited.status_code == 429
    async with client_for(app, "198.51.100.51") as other:
        assert (await login(other, "victim99@example.com", WRONG)).status_code == 401


@pytest.mark.redis
async def test_limits_hold_in_redis_shared_by_replicas(
    settings_factory: Callable[..., Settings],
) -> None:
    """Two app replicas sharing Redis count the same attempts."""
    redis = urlsplit(REDIS_URL)
    require("Redis", redis.hostname or "127.0.0.1", redis.port or 6379)
    settings = settings_factory(redis_url=REDIS_URL, login_limit_per_account_ip="2/15 minutes")
    # Redis outlives the test: a fresh account and address keep runs from adding up.
    email, ip = f"shared-{uuid.uuid4().hex}@example.com", f"2001:db8::{uuid.uuid4().hex[:4]}"
    first, second = create_app(settings, background=False), create_app(settings, background=False)
    async with (
        first.router.lifespan_context(first),
        second.router.lifespan_context(second),
        client_for(first, ip) as a,
        client_for(second, ip) as b,
    ):
        try:
            assert (await login(a, email, WRONG)).status_code == 401
            assert (await login(b, email, WRONG)).status_code == 401
            assert (await login(a, email, WRONG)).status_code == 429
            assert (await login(b, email, WRONG)).status_code == 429
        finally:
            await first.state.ctx.limiter.close()
            await second.state.ctx.limiter.close()
