"""A process remembers a key that authenticated for `SAASSY_API_KEY_CACHE_S` seconds: another
process's revocation, an organization deleted or moved to another plan elsewhere, reach it
within that bound; in the process that made the change at once; and a submission is always
admitted under the plan the organization has now.

Two apps on one database stand for two server processes; each cache's clock is moved by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from saassy.auth.access_cache import AccessChanged, RecentReads
from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import ApiKey, Organization, QuotaCounter
from tests.quotas.conftest import MakeOrganization, issue_api_key
from tests.quotas.conftest import make_organization as make_organization  # a fixture
from tests.second_process import Clock
from tests.second_process import other as other  # a fixture
from tests.second_process import other_app as other_app  # a fixture

TTL_S = 2.0
TASKS = "/api/v1/tasks"
ECHO = {"type": "echo", "input": {}}


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(api_key_cache_s=TTL_S)


@pytest.fixture
def other_clock(other_app: FastAPI) -> Clock:
    clock = Clock()
    other_app.state.ctx.key_cache.clock = clock
    return clock


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_another_process_refuses_a_revoked_key_within_the_bound(
    ctx: AppContext,
    other: httpx.AsyncClient,
    other_clock: Clock,
    make_organization: MakeOrganization,
) -> None:
    key = await issue_api_key(ctx, await make_organization())
    assert (await other.get(TASKS, headers=bearer(key))).status_code == 200
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(ApiKey).values(revoked_at=utcnow()))
    other_clock.now += TTL_S - 0.01
    assert (await other.get(TASKS, headers=bearer(key))).status_code == 200
    other_clock.now += 0.01
    refused = await other.get(TASKS, headers=bearer(key))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"


async def test_another_process_refuses_a_deleted_organizations_key_within_the_bound(
    ctx: AppContext,
    other: httpx.AsyncClient,
    other_clock: Clock,
    make_organization: MakeOrganization,
) -> None:
    organization_id = await make_organization()
    key = await issue_api_key(ctx, organization_id)
    assert (await other.get(TASKS, headers=bearer(key))).status_code == 200
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Organization)
            .where(Organization.id == organization_id)
            .values(deleted_at=utcnow())
        )
    # Submitting reads the organization in its own transaction: refused at once.
    assert (await other.post(TASKS, json=ECHO, headers=bearer(key))).status_code == 404
    other_clock.now += TTL_S
    assert (await other.get(TASKS, headers=bearer(key))).status_code == 401


async def test_a_submission_is_admitted_under_the_plan_of_now_not_the_remembered_one(
    ctx: AppContext,
    other: httpx.AsyncClient,
    other_clock: Clock,
    make_organization: MakeOrganization,
) -> None:
    organization_id = await make_organization(plan="starter")
    key = await issue_api_key(ctx, organization_id)
    assert (await other.post(TASKS, json=ECHO, headers=bearer(key))).status_code == 202
    # Another process moves it to the free plan, whose 100 tasks this month are all used.
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Organization).where(Organization.id == organization_id).values(plan="free")
        )
        await session.execute(
            update(QuotaCounter)
            .where(QuotaCounter.organization_id == organization_id)
            .values(used=100)
        )
    refused = await other.post(TASKS, json=ECHO, headers=bearer(key))
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"]["details"]["limit"] == 100


async def test_the_process_that_revokes_forgets_at_once(
    client: httpx.AsyncClient, ctx: AppContext, make_organization: MakeOrganization
) -> None:
    key = await issue_api_key(ctx, await make_organization())
    assert (await client.get(TASKS, headers=bearer(key))).status_code == 200
    assert len(ctx.key_cache) == 1
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(ApiKey).values(revoked_at=utcnow()))
    # Behind the app's back: remembered. A revocation through the app commits the effect.
    assert (await client.get(TASKS, headers=bearer(key))).status_code == 200
    await ctx.after_commit([AccessChanged()])
    assert (await client.get(TASKS, headers=bearer(key))).status_code == 401


def test_only_good_standing_is_remembered_and_never_past_its_bound() -> None:
    clock = Clock()
    cache = RecentReads(ttl_s=TTL_S, max_keys=2)
    cache.clock = clock
    holder = object()
    cache.put("a", holder, clock(), cache.generation)  # type: ignore[arg-type]
    assert cache.get("a") is holder
    clock.now += TTL_S
    assert cache.get("a") is None
    for name in ("a", "b", "c"):
        cache.put(name, holder, clock(), cache.generation)  # type: ignore[arg-type]
    assert len(cache) == 2
    assert cache.get("a") is None  # the oldest made room
    off = RecentReads(ttl_s=0)
    off.put("a", holder, clock(), off.generation)  # type: ignore[arg-type]
    assert off.get("a") is None


async def test_an_unknown_key_is_not_remembered(client: httpx.AsyncClient, ctx: AppContext) -> None:
    response = await client.get(TASKS, headers=bearer(f"sk_{uuid.uuid4().hex}"))
    assert response.status_code == 401
    assert len(ctx.key_cache) == 0
