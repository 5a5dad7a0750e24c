"""API rate limits per API key, per user and per IP: the N+1th request is 429 with Retry-After;
every counted answer says where the caller stands (`X-RateLimit-*`).

Each test runs against the in-memory storage and against a real Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from limits.aio.storage import RedisStorage

from saassy.config import EXAMPLE_CONFIG, Settings
from saassy.context import AppContext
from saassy.models import Organization
from tests.conftest import SignUp, client_for
from tests.quotas.conftest import issue_api_key
from tests.services import REDIS_URL, require

API_LIMIT = 3  # the free plan's api_rate_limit, per minute
ANONYMOUS_LIMIT = 3  # per IP, per minute


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def settings(
    request: pytest.FixtureRequest, settings_factory: Callable[..., Settings], tmp_path: Path
) -> Settings:
    redis_url = None
    if request.param == "redis":
        require("Redis", "127.0.0.1", 6379)
        redis_url = REDIS_URL
    example = EXAMPLE_CONFIG.read_text()
    free_limit = 'api_rate_limit = "60/minute"'
    assert free_limit in example
    config = tmp_path / "saassy.toml"
    config.write_text(example.replace(free_limit, f'api_rate_limit = "{API_LIMIT}/minute"', 1))
    return settings_factory(
        config=config,
        redis_url=redis_url,
        anonymous_limit_per_ip=f"{ANONYMOUS_LIMIT}/minute",
    )


@pytest.fixture(autouse=True)
async def _fresh_limiter(ctx: AppContext) -> AsyncIterator[None]:
    assert isinstance(ctx.limiter.storage, RedisStorage) == bool(ctx.settings.redis_url)
    # Windows outlive a test in Redis (shared with other runs): count under a fresh namespace.
    ctx.limiter.namespace = f"test-{uuid.uuid4().hex}"
    yield
    await ctx.limiter.close()


async def _exhaust(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
    for attempt in range(1, API_LIMIT + 1):
        response = await client.get(path, headers=headers)
        assert response.status_code == 200, f"request {attempt}: {response.text}"


def _assert_limited(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit()
    assert 1 <= int(retry_after) <= 60
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert response.headers["X-RateLimit-Remaining"] == "0"
    # Reset counts seconds from now, as Retry-After does (not an epoch time).
    assert response.headers["X-RateLimit-Reset"] == retry_after


async def test_successful_answers_count_down(client: httpx.AsyncClient, signup: SignUp) -> None:
    account = await signup()
    remaining = []
    for _ in range(API_LIMIT):
        response = await client.get("/api/v1/usage", headers=account.headers)
        assert response.status_code == 200, response.text
        assert response.headers["X-RateLimit-Limit"] == str(API_LIMIT)
        assert 1 <= int(response.headers["X-RateLimit-Reset"]) <= 60
        remaining.append(int(response.headers["X-RateLimit-Remaining"]))
    assert remaining == list(range(API_LIMIT - 1, -1, -1))
    _assert_limited(await client.get("/api/v1/usage", headers=account.headers), API_LIMIT)


async def test_errors_and_answers_an_endpoint_builds_carry_them_too(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup(verified=False)  # the first anonymous call from this address
    missing = await client.get(f"/api/v1/tasks/{uuid.uuid4()}", headers=account.headers)
    assert missing.status_code == 404, missing.text
    assert missing.headers["X-RateLimit-Remaining"] == str(API_LIMIT - 1)
    logout = await client.post("/api/v1/auth/logout", json={"refresh_token": account.refresh_token})
    assert logout.status_code == 204  # a Response the endpoint made itself
    assert logout.headers["X-RateLimit-Limit"] == str(ANONYMOUS_LIMIT)
    assert logout.headers["X-RateLimit-Remaining"] == str(ANONYMOUS_LIMIT - 2)
    unauthenticated = await client.get("/api/v1/usage")
    assert unauthenticated.status_code == 401
    assert "X-RateLimit-Limit" not in unauthenticated.headers  # nobody was counted


async def test_per_user(client: httpx.AsyncClient, signup: SignUp) -> None:
    # Unverified: following two verification links would spend this module's tiny /auth budget.
    ada, bob = await signup(verified=False), await signup(verified=False)
    await _exhaust(client, "/api/v1/usage", ada.headers)
    _assert_limited(await client.get("/api/v1/usage", headers=ada.headers), API_LIMIT)
    assert (await client.get("/api/v1/me", headers=ada.headers)).status_code == 429
    assert (await client.get("/api/v1/usage", headers=bob.headers)).status_code == 200


async def test_per_api_key(client: httpx.AsyncClient, signup: SignUp, ctx: AppContext) -> None:
    owner = await signup()
    first, second = [
        {"Authorization": f"Bearer {await issue_api_key(ctx, owner.organization_id)}"}
        for _ in range(2)
    ]
    await _exhaust(client, "/api/v1/usage", first)
    _assert_limited(await client.get("/api/v1/usage", headers=first), API_LIMIT)
    assert (await client.get("/api/v1/usage", headers=second)).status_code == 200
    assert (await client.get("/api/v1/usage", headers=owner.headers)).status_code == 200


async def test_per_ip_on_public_endpoints(app: FastAPI) -> None:
    async with client_for(app, "198.51.100.7") as flooder, client_for(app, "198.51.100.8") as other:
        for _ in range(ANONYMOUS_LIMIT):
            assert (await flooder.get("/api/v1/plans")).status_code == 200
        _assert_limited(await flooder.get("/api/v1/plans"), ANONYMOUS_LIMIT)
        assert (await other.get("/api/v1/plans")).status_code == 200


async def test_an_organizations_override_sets_its_api_rate(
    client: httpx.AsyncClient, signup: SignUp, ctx: AppContext
) -> None:
    account = await signup()
    async with ctx.sessionmaker() as session, session.begin():
        organization = await session.get(Organization, uuid.UUID(account.organization_id))
        assert organization is not None
        organization.plan_overrides = {"api_rate_limit": f"{API_LIMIT + 2}/minute"}
    for _ in range(API_LIMIT + 2):
        assert (await client.get("/api/v1/usage", headers=account.headers)).status_code == 200
    _assert_limited(await client.get("/api/v1/usage", headers=account.headers), API_LIMIT + 2)
