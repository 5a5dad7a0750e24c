"""The spend cap at admission: overage stops where the cap would be passed, compute units
count toward it, and owners and admins hear of it at 80%, once a month."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from saassy.context import AppContext
from saassy.kit.time import month_start, utcnow
from saassy.models import Role, SpendCap
from tests.billing.overage.conftest import (
    NOOP,
    SPEND_CAP,
    TASKS,
    Subscribe,
    add_member,
    record_compute_units,
    set_cap,
    set_plan,
)
from tests.conftest import SignUp
from tests.email.mail import outbox
from tests.quotas.conftest import issue_api_key
from tests.tasks.conftest import Tenant, TenantKey


async def submit(client: httpx.AsyncClient, org: TenantKey, count: int) -> list[int]:
    return [
        (await client.post(TASKS, json=NOOP, headers=org.headers)).status_code for _ in range(count)
    ]


async def test_the_cap_admits_the_overage_it_pays_for_and_no_more(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()  # 3 tasks included, then $0.10 a task
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 50)  # $0.50: five tasks past the plan
    assert await submit(client, org, 9) == [202] * 8 + [402]
    refused = (await client.post(TASKS, json=NOOP, headers=org.headers)).json()["error"]
    assert refused["code"] == "spend_cap_reached"
    assert "field" not in refused
    assert refused["details"]["monthly_cap_usd"] == "0.50"
    assert refused["details"]["overage_usd"] == "0.50"
    message = refused["message"]
    assert "spend cap of $0.50" in message
    assert "overage so far is $0.50" in message
    assert "PUT /api/v1/billing/spend-cap" in message


async def test_a_cap_of_zero_allows_no_overage(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 0)
    assert await submit(client, org, 4) == [202] * 3 + [402]
    refused = (await client.post(TASKS, json=NOOP, headers=org.headers)).json()["error"]
    assert refused["code"] == "spend_cap_reached"
    assert "a cap of $0.00 allows no overage" in refused["message"]


async def test_compute_units_count_toward_the_cap_as_they_are_recorded(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()  # $0.50 a compute unit
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 100)  # $1.00
    first = await client.post(TASKS, json=NOOP, headers=org.headers)
    await record_compute_units(ctx, first.json()["id"], 1)  # $0.50 of the cap
    # 3 included (one of them the first), then five tasks pay for the other $0.50.
    assert await submit(client, org, 8) == [202] * 7 + [402]
    # A task already running ends past the cap by its own compute units: the cap stops
    # admission, it cannot stop what runs.
    await record_compute_units(ctx, first.json()["id"], 1, attempt=2)
    status = (await client.get(SPEND_CAP, headers=org.headers)).json()
    assert status["overage_usd"] == "1.50"
    assert status["share_used"] == 1.5
    assert status["tasks_over_plan"] == 5
    assert status["compute_units"] == "2.000000"


async def test_unpriced_compute_units_leave_the_cap_to_tasks(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant(plan="tasks_only")
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 20)  # two tasks past the plan
    first = await client.post(TASKS, json=NOOP, headers=org.headers)
    await record_compute_units(ctx, first.json()["id"], 100)
    assert await submit(client, org, 5) == [202] * 4 + [402]
    status = (await client.get(SPEND_CAP, headers=org.headers)).json()
    assert (status["overage_usd"], status["compute_units"]) == ("0.20", "100.000000")


async def _any_task(client: httpx.AsyncClient, org: TenantKey) -> str:
    listed = (await client.get(TASKS, headers=org.headers)).json()
    return str(listed["items"][0]["id"])


async def test_a_task_given_back_frees_its_overage(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 10)  # one task past the plan
    assert await submit(client, org, 5) == [202] * 4 + [402]
    queued = await _any_task(client, org)
    canceled = await client.post(f"{TASKS}/{queued}/cancel", headers=org.headers)
    assert canceled.status_code == 200, canceled.text
    assert await submit(client, org, 2) == [202, 402]


async def warnings_to(ctx: AppContext, address: str) -> list[str]:
    return [mail.body for mail in await outbox(ctx, address) if "spend cap" in mail.subject]


async def test_owners_and_admins_are_warned_at_80_percent_once_a_month(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, subscribe: Subscribe
) -> None:
    owner = await signup()
    admin = await signup()
    member = await signup()
    organization_id = owner.organization_id
    await set_plan(ctx, organization_id, "metered")
    await add_member(ctx, organization_id, admin.user_id, Role.admin)
    await add_member(ctx, organization_id, member.user_id, Role.member)
    await subscribe(organization_id)
    put = await client.put(SPEND_CAP, json={"monthly_cap_usd": "0.50"}, headers=owner.headers)
    assert put.status_code == 200, put.text
    org = TenantKey(uuid.UUID(organization_id), await issue_api_key(ctx, organization_id))

    assert await submit(client, org, 6) == [202] * 6  # $0.30 past the plan: 60%
    assert await warnings_to(ctx, owner.email) == []
    assert await submit(client, org, 1) == [202]  # $0.40: 80%
    for person in (owner, admin):
        (body,) = await warnings_to(ctx, person.email)
        assert "$0.40 of its $0.50 spend cap (80%)" in body
        assert "PUT /api/v1/billing/spend-cap" in body
    assert await warnings_to(ctx, member.email) == []
    assert await submit(client, org, 2) == [202, 402]  # $0.50 (100%), then refused
    assert len(await warnings_to(ctx, owner.email)) == 1
    async with ctx.sessionmaker() as session:
        cap = await session.scalar(select(SpendCap))
    assert cap is not None
    assert cap.warned_for_period == month_start(utcnow())
    status = (await client.get(SPEND_CAP, headers=owner.headers)).json()
    assert status["warned"] is True


@pytest.mark.parametrize("billing_on", [False])
async def test_without_billing_a_cap_changes_nothing_at_admission(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()
    await set_cap(ctx, org.organization_id, 0)
    assert await submit(client, org, 4) == [202] * 3 + [402]
    refused = (await client.post(TASKS, json=NOOP, headers=org.headers)).json()["error"]
    assert refused["code"] == "quota_exceeded"
