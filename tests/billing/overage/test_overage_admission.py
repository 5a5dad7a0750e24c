"""Tasks past the plan: admitted as overage for a paying organization when billing is on,
refused exactly as before otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from saassy.kit.time import next_month_start, utcnow
from tests.billing.overage.conftest import NOOP, TASKS, Subscribe
from tests.tasks.conftest import Tenant, TenantKey


async def submit(client: httpx.AsyncClient, org: TenantKey, count: int) -> list[int]:
    return [
        (await client.post(TASKS, json=NOOP, headers=org.headers)).status_code for _ in range(count)
    ]


def quota_refusal(used: int = 3) -> dict[str, object]:
    return {
        "code": "quota_exceeded",
        "message": f"Quota 'tasks' is exhausted ({used} of 3 used); it resets at "
        f"{next_month_start(datetime.now(UTC)).isoformat()}.",
        "details": {
            "metric": "tasks",
            "limit": 3,
            "used": used,
            "resets_at": next_month_start(datetime.now(UTC)).isoformat(),
        },
    }


@pytest.mark.parametrize("billing_on", [False])
async def test_without_billing_a_task_past_the_plan_is_refused_as_before(
    client: httpx.AsyncClient, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()  # its plan has an overage price; billing is off
    await subscribe(org.organization_id, "active")
    assert await submit(client, org, 3) == [202] * 3
    refused = await client.post(TASKS, json=NOOP, headers=org.headers)
    assert refused.status_code == 402
    assert refused.json()["error"] == quota_refusal()


async def test_an_active_subscription_runs_past_the_plan(
    client: httpx.AsyncClient, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()
    await subscribe(org.organization_id, "active")
    assert await submit(client, org, 8) == [202] * 8
    usage = (await client.get("/api/v1/usage", headers=org.headers)).json()
    assert {q["metric"]: q["used"] for q in usage["quotas"]}["tasks"] == 8


@pytest.mark.parametrize(
    ("status", "past_due_for"),
    [
        pytest.param("trialing", None, id="trialing"),
        pytest.param("past_due", timedelta(days=6), id="past-due-within-grace"),
    ],
)
async def test_a_live_subscription_runs_past_the_plan(
    client: httpx.AsyncClient,
    tenant: Tenant,
    subscribe: Subscribe,
    status: str,
    past_due_for: timedelta | None,
) -> None:
    org = await tenant()
    since = None if past_due_for is None else utcnow() - past_due_for
    await subscribe(org.organization_id, status, past_due_since=since)
    assert await submit(client, org, 5) == [202] * 5


@pytest.mark.parametrize(
    ("status", "past_due_for"),
    [
        pytest.param("past_due", timedelta(days=7, minutes=1), id="past-due-past-grace"),
        pytest.param("canceled", None, id="canceled"),
        pytest.param("unpaid", None, id="unpaid"),
        pytest.param("incomplete", None, id="incomplete"),
    ],
)
async def test_a_subscription_not_paid_up_is_refused_past_the_plan(
    client: httpx.AsyncClient,
    tenant: Tenant,
    subscribe: Subscribe,
    status: str,
    past_due_for: timedelta | None,
) -> None:
    org = await tenant()
    since = None if past_due_for is None else utcnow() - past_due_for
    await subscribe(org.organization_id, status, past_due_since=since)
    assert await submit(client, org, 4) == [202] * 3 + [402]
    refused = await client.post(TASKS, json=NOOP, headers=org.headers)
    assert refused.json()["error"] == quota_refusal()


async def test_without_a_subscription_the_plan_is_the_limit(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    org = await tenant()
    assert await submit(client, org, 4) == [202] * 3 + [402]


async def test_a_plan_without_an_overage_price_is_the_limit_even_when_paid(
    client: httpx.AsyncClient, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant(plan="free")
    await subscribe(org.organization_id, "active")
    assert await submit(client, org, 4) == [202] * 3 + [402]
    refused = await client.post(TASKS, json=NOOP, headers=org.headers)
    assert refused.json()["error"] == quota_refusal()
