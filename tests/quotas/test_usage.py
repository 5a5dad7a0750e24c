"""`GET /api/v1/usage`: what is used and what is left, for a user or an API key."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx

from saassy.context import AppContext
from saassy.kit.time import next_month_start, utcnow
from saassy.quotas.service import reserve
from tests.conftest import SignUp
from tests.quotas.conftest import issue_api_key


def _json_time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_a_new_free_organization_has_everything_left(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    response = await client.get("/api/v1/usage", headers=account.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    now = utcnow()
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    month = datetime(now.year, now.month, 1, tzinfo=UTC)
    assert body["organization_id"] == account.organization_id
    assert body["plan"] == {"key": "free", "name": "Free"}
    assert body["period"] == {
        "start": _json_time(month),
        "end": _json_time(next_month_start(now)),
    }
    tasks, publish = body["quotas"]
    assert tasks == {
        "metric": "tasks",
        "used": 0,
        "limit": 100,
        "remaining": 100,
        "period": "month",
        "period_start": body["period"]["start"],
        "resets_at": body["period"]["end"],
    }
    assert publish == {
        "metric": "action:publish",
        "used": 0,
        "limit": 5,
        "remaining": 5,
        "period": "day",
        "period_start": _json_time(today),
        "resets_at": _json_time(today + timedelta(days=1)),
    }
    assert body["limits"] == {
        "max_concurrent_tasks": 1,
        "max_task_duration_s": 60,
        "resources": {"memory_mb": 512, "cpus": 0.5, "pids": 256, "disk_mb": 1024},
        "api_rate_limit": "60/minute",
    }


async def test_usage_counts_reservations_and_shows_uncapped_actions(
    client: httpx.AsyncClient, signup: SignUp, ctx: AppContext
) -> None:
    account = await signup()
    organization_id = uuid.UUID(account.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        await reserve(session, ctx.settings.catalog, organization_id, "tasks", 30)
        await reserve(session, ctx.settings.catalog, organization_id, "action:publish", 5)
        await reserve(session, ctx.settings.catalog, organization_id, "action:export", 2)

    body = (await client.get("/api/v1/usage", headers=account.headers)).json()
    quotas = {q["metric"]: (q["used"], q["limit"], q["remaining"]) for q in body["quotas"]}
    assert quotas == {
        "tasks": (30, 100, 70),
        "action:publish": (5, 5, 0),
        "action:export": (2, None, None),
    }


async def test_an_api_key_reads_its_organizations_usage(
    client: httpx.AsyncClient, signup: SignUp, ctx: AppContext
) -> None:
    account = await signup()
    key = await issue_api_key(ctx, account.organization_id)
    response = await client.get("/api/v1/usage", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    assert response.json()["organization_id"] == account.organization_id


async def test_usage_needs_credentials(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/usage")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


async def test_another_organizations_usage_is_not_found(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    mine, theirs = await signup(), await signup()
    response = await client.get(
        "/api/v1/usage",
        headers={**mine.headers, "Saassy-Organization": theirs.organization_id},
    )
    assert response.status_code == 404
    assert theirs.organization_id not in response.text
