"""Idempotency-Key and admission under concurrency: no duplicate task, no overspent quota."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from saassy.context import AppContext
from saassy.models import QuotaCounter, QuotaReservation, Task
from tests.conftest import client_for
from tests.tasks.conftest import Tenant, TenantKey

TASKS = "/api/v1/tasks"
BODY = {"type": "python", "input": {"code": "print('hi')"}}


async def counts(ctx: AppContext, org: TenantKey) -> tuple[int, int, int]:
    """(tasks, quota reservations, monthly tasks used) of the organization."""
    async with ctx.sessionmaker() as session:
        tasks = await session.scalar(
            select(func.count()).where(Task.organization_id == org.organization_id)
        )
        reservations = await session.scalar(
            select(func.count()).where(QuotaReservation.organization_id == org.organization_id)
        )
    async with ctx.sessionmaker() as session:
        used = await session.scalar(
            select(func.coalesce(func.sum(QuotaCounter.used), 0)).where(
                QuotaCounter.organization_id == org.organization_id,
                QuotaCounter.metric == "tasks",
            )
        )
    return int(tasks or 0), int(reservations or 0), int(used or 0)


def keyed(org: TenantKey, key: str) -> dict[str, str]:
    return org.headers | {"Idempotency-Key": key}


async def test_same_key_and_body_answer_the_same_task(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()
    first = await client.post(TASKS, json=BODY, headers=keyed(org, "order-1"))
    again = await client.post(TASKS, json=BODY, headers=keyed(org, "order-1"))
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await counts(ctx, org) == (1, 1, 1)

    other = await client.post(TASKS, json=BODY, headers=keyed(org, "order-2"))
    assert other.status_code == 202
    assert other.json()["id"] != first.json()["id"]
    unkeyed = await client.post(TASKS, json=BODY, headers=org.headers)
    assert unkeyed.json()["id"] not in {first.json()["id"], other.json()["id"]}
    assert await counts(ctx, org) == (3, 3, 3)


async def test_same_key_other_body_is_409(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()
    first = await client.post(TASKS, json=BODY, headers=keyed(org, "k"))
    assert first.status_code == 202
    for changed in (
        {**BODY, "input": {"code": "print('other')"}},
        {**BODY, "priority": 1},
        {**BODY, "timeout_s": 30},
        {"type": "echo", "input": {"code": "print('hi')"}},
    ):
        response = await client.post(TASKS, json=changed, headers=keyed(org, "k"))
        assert response.status_code == 409, changed
        error = response.json()["error"]
        assert error["code"] == "idempotency_key_reused"
        assert error["details"]["task_id"] == first.json()["id"]
    assert await counts(ctx, org) == (1, 1, 1)


async def test_keys_are_per_organization(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    one, two = await tenant(), await tenant()
    a = await client.post(TASKS, json=BODY, headers=keyed(one, "shared"))
    b = await client.post(TASKS, json={**BODY, "priority": 3}, headers=keyed(two, "shared"))
    assert (a.status_code, b.status_code) == (202, 202)
    assert a.json()["id"] != b.json()["id"]


async def test_a_key_longer_than_255_is_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    org = await tenant()
    response = await client.post(TASKS, json=BODY, headers=keyed(org, "k" * 256))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "Idempotency-Key"


async def _post_concurrently(
    app: FastAPI, count: int, body: dict[str, Any], headers: dict[str, str]
) -> list[httpx.Response]:
    async with client_for(app) as client:
        return await asyncio.gather(
            *(client.post(TASKS, json=body, headers=headers) for _ in range(count))
        )


async def test_the_same_key_sent_20_times_at_once_makes_one_task(
    app: FastAPI, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()
    responses = await _post_concurrently(app, 20, BODY, keyed(org, "burst"))
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await counts(ctx, org) == (1, 1, 1)


async def test_the_same_key_at_once_with_one_task_of_quota_left_answers_the_task(
    app: FastAPI, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant(overrides={"tasks_per_month": 1})
    responses = await _post_concurrently(app, 20, BODY, keyed(org, "last-one"))
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await counts(ctx, org) == (1, 1, 1)


async def test_50_concurrent_submissions_with_one_task_left_admit_exactly_one(
    app: FastAPI, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant(overrides={"tasks_per_month": 3})
    async with client_for(app) as client:
        for _ in range(2):
            assert (await client.post(TASKS, json=BODY, headers=org.headers)).status_code == 202
    responses = await _post_concurrently(app, 50, BODY, org.headers)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] + [402] * 49, [r.text for r in responses if r.status_code != 402]
    refusal = next(r for r in responses if r.status_code == 402).json()["error"]
    assert refusal["code"] == "quota_exceeded"
    assert refusal["details"]["used"] == refusal["details"]["limit"] == 3
    assert refusal["details"]["resets_at"]
    assert await counts(ctx, org) == (3, 3, 3)
