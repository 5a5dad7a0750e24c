"""A hostile tenant against the spend cap at admission: cancels, replays, month edges, plan
changes, huge compute units, billing left half on, and what its refusals and e-mails show."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from saassy.billing.caps.errors import SpendCapReached
from saassy.billing.caps.overage import reserve_monthly_task
from saassy.context import AppContext
from saassy.models import Organization, QuotaCounter, Role
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
from tests.billing.overage.test_spend_cap_admission import submit, warnings_to
from tests.conftest import Account, SignUp, client_for
from tests.email.mail import outbox
from tests.quotas.conftest import counter_value, issue_api_key
from tests.tasks.conftest import Tenant, TenantKey

LAST_INSTANT_OF_DECEMBER = datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
NEW_YEAR = datetime(2027, 1, 1, tzinfo=UTC)


async def key_of(ctx: AppContext, account: Account) -> TenantKey:
    """An API key of the account's organization."""
    organization_id = uuid.UUID(account.organization_id)
    return TenantKey(organization_id, await issue_api_key(ctx, account.organization_id))


async def set_overrides(
    ctx: AppContext, organization_id: uuid.UUID, overrides: dict[str, int]
) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        organization = await session.get(Organization, organization_id)
        assert organization is not None
        organization.plan_overrides = overrides
    ctx.key_cache.clear()  # as a staff change does (AccessChanged): this one is raw SQL


async def test_canceling_a_task_twice_gives_its_overage_back_once(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 10)  # one task past the plan
    assert await submit(client, org, 4) == [202] * 4
    listed = (await client.get(TASKS, headers=org.headers)).json()["items"]
    queued = listed[0]["id"]
    for _ in range(3):
        await client.post(f"{TASKS}/{queued}/cancel", headers=org.headers)
    assert await counter_value(ctx, org.organization_id, "tasks") == 3
    assert await submit(client, org, 2) == [202, 402]


async def test_a_replayed_submission_past_the_cap_is_the_earlier_task_not_a_new_one(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 10)
    keyed = {**org.headers, "Idempotency-Key": "the-last-one"}
    assert await submit(client, org, 3) == [202] * 3
    first = await client.post(TASKS, json=NOOP, headers=keyed)
    assert first.status_code == 202
    for _ in range(3):
        again = await client.post(TASKS, json=NOOP, headers=keyed)
        assert again.status_code == 202, again.text
        assert again.json()["id"] == first.json()["id"]
    fresh = await client.post(TASKS, json=NOOP, headers={**org.headers, "Idempotency-Key": "new"})
    assert fresh.json()["error"]["code"] == "spend_cap_reached"
    assert await counter_value(ctx, org.organization_id, "tasks") == 4


async def test_concurrent_twins_at_the_cap_take_one_unit_and_all_answer_the_task(
    app: FastAPI, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 10)
    keyed = {**org.headers, "Idempotency-Key": "twin"}
    async with client_for(app) as client:
        assert await submit(client, org, 3) == [202] * 3
        responses = await asyncio.gather(
            *(client.post(TASKS, json=NOOP, headers=keyed) for _ in range(20))
        )
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await counter_value(ctx, org.organization_id, "tasks") == 4


async def test_a_task_admitted_in_the_months_last_instant_counts_in_that_month_only(
    ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 10)  # one task past the plan a month
    settings = ctx.settings
    plan = settings.catalog.plans["metered"]

    async def reserve(at: datetime) -> None:
        async with ctx.sessionmaker() as session, session.begin():
            await reserve_monthly_task(session, settings, plan, org.organization_id, at)

    for at in (LAST_INSTANT_OF_DECEMBER, NEW_YEAR):
        for _ in range(4):
            await reserve(at)
        with pytest.raises(SpendCapReached) as refused:
            await reserve(at)
        assert refused.value.details is not None
        assert refused.value.details["resets_at"].startswith(
            "2027-01-01" if at < NEW_YEAR else "2027-02-01"
        )
    async with ctx.sessionmaker() as session:
        counters = dict(
            (row.period_start, row.used)
            for row in await session.scalars(
                select(QuotaCounter).where(QuotaCounter.organization_id == org.organization_id)
            )
        )
    assert counters == {date(2026, 12, 1): 4, date(2027, 1, 1): 4}


async def test_the_80_percent_e_mail_goes_out_again_in_the_next_month_and_only_there(
    ctx: AppContext, signup: SignUp, subscribe: Subscribe
) -> None:
    owner = await signup()
    organization_id = uuid.UUID(owner.organization_id)
    await set_plan(ctx, organization_id, "metered")
    await subscribe(organization_id)
    await set_cap(ctx, organization_id, 50)  # warned at the 4th task past the plan
    settings = ctx.settings
    plan = settings.catalog.plans["metered"]
    for at in (LAST_INSTANT_OF_DECEMBER, NEW_YEAR):
        for _ in range(8):
            async with ctx.sessionmaker() as session, session.begin():
                await reserve_monthly_task(session, settings, plan, organization_id, at)
    assert len(await warnings_to(ctx, owner.email)) == 2


async def test_a_downgrade_mid_month_counts_tasks_past_the_new_plan_against_the_cap(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant(overrides={"tasks_per_month": 6})
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 20)
    assert await submit(client, org, 6) == [202] * 6  # all within the contract's 6
    await set_overrides(ctx, org.organization_id, {})  # the contract ends: metered's 3
    status = (await client.get(SPEND_CAP, headers=org.headers)).json()
    assert (status["tasks_over_plan"], status["overage_usd"]) == (3, "0.30")
    refused = await client.post(TASKS, json=NOOP, headers=org.headers)
    assert refused.json()["error"]["code"] == "spend_cap_reached"
    # A downgrade to a plan that sells no overage refuses as the plan does.
    await set_plan(ctx, org.organization_id, "free")
    refused = await client.post(TASKS, json=NOOP, headers=org.headers)
    assert refused.json()["error"]["code"] == "quota_exceeded"


async def test_an_upgrade_mid_month_lets_the_cap_pay_past_the_bigger_plan(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 10)
    assert await submit(client, org, 5) == [202] * 4 + [402]
    await set_overrides(ctx, org.organization_id, {"tasks_per_month": 6})
    assert await submit(client, org, 4) == [202] * 3 + [402]
    assert await counter_value(ctx, org.organization_id, "tasks") == 7


@pytest.mark.parametrize("compute_units", [10**6, 10**12, 10**15])
async def test_huge_compute_units_refuse_overage_without_an_internal_error(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    subscribe: Subscribe,
    compute_units: int,
) -> None:
    org = await tenant()
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 1_000_000_000)  # $10,000,000: the highest cap
    first = await client.post(TASKS, json=NOOP, headers=org.headers)
    await record_compute_units(ctx, first.json()["id"], compute_units)
    codes = [
        (await client.post(TASKS, json=NOOP, headers=org.headers)).status_code for _ in range(3)
    ]
    status = await client.get(SPEND_CAP, headers=org.headers)
    assert status.status_code == 200, status.text
    overage = compute_units * 0.5
    assert status.json()["compute_units"] == f"{compute_units}.000000"
    if overage >= 10_000_000:
        assert codes == [202, 202, 402]
        refused = (await client.post(TASKS, json=NOOP, headers=org.headers)).json()["error"]
        assert refused["code"] == "spend_cap_reached"
    else:
        assert codes == [202, 202, 202]


@pytest.mark.parametrize("billing_on", [False])
async def test_a_subscription_left_behind_sells_nothing_without_billing(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()
    await subscribe(org.organization_id)
    assert await submit(client, org, 4) == [202] * 3 + [402]
    refused = (await client.post(TASKS, json=NOOP, headers=org.headers)).json()["error"]
    assert refused["code"] == "quota_exceeded"


@pytest.mark.parametrize("status", ["canceled", "unpaid", "incomplete", "paused"])
async def test_a_subscription_that_does_not_pay_sells_no_overage(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe, status: str
) -> None:
    org = await tenant()
    await subscribe(org.organization_id, status=status)
    assert await submit(client, org, 4) == [202] * 3 + [402]


async def test_a_refusal_and_the_warning_speak_of_their_own_organization_only(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, subscribe: Subscribe
) -> None:
    owner, other_owner = await signup(), await signup()
    admin, member = await signup(), await signup()
    for account in (owner, other_owner):
        await set_plan(ctx, account.organization_id, "metered")
        await subscribe(account.organization_id)
    await add_member(ctx, owner.organization_id, admin.user_id, Role.admin)
    await add_member(ctx, owner.organization_id, member.user_id, Role.member)
    await add_member(ctx, other_owner.organization_id, member.user_id, Role.admin)
    await client.put(SPEND_CAP, json={"monthly_cap_usd": "0.50"}, headers=owner.headers)
    await client.put(SPEND_CAP, json={"monthly_cap_usd": "9.99"}, headers=other_owner.headers)
    ours, theirs = await key_of(ctx, owner), await key_of(ctx, other_owner)
    assert await submit(client, theirs, 5) == [202] * 5  # $0.20 of their $9.99
    assert await submit(client, ours, 9) == [202] * 8 + [402]
    refused = (await client.post(TASKS, json=NOOP, headers=ours.headers)).text
    for foreign in ("9.99", other_owner.organization_id, other_owner.email, "0.20"):
        assert foreign not in refused
    for person in (owner, admin):
        (body,) = await warnings_to(ctx, person.email)
        assert "9.99" not in body
        assert other_owner.organization_id not in body
    # The member is an admin elsewhere: warned of nothing here; the other owner of nothing.
    assert await warnings_to(ctx, member.email) == []
    assert await warnings_to(ctx, other_owner.email) == []
    assert await submit(client, theirs, 1) == [202]


async def test_concurrent_admissions_crossing_80_percent_send_one_warning(
    app: FastAPI, ctx: AppContext, signup: SignUp, subscribe: Subscribe
) -> None:
    owner = await signup()
    await set_plan(ctx, owner.organization_id, "metered")
    await subscribe(owner.organization_id)
    org = await key_of(ctx, owner)
    async with client_for(app) as client:
        await client.put(SPEND_CAP, json={"monthly_cap_usd": "1.00"}, headers=owner.headers)
        assert await submit(client, org, 10) == [202] * 10  # $0.70
        responses = await asyncio.gather(
            *(client.post(TASKS, json=NOOP, headers=org.headers) for _ in range(20))
        )
        # The same cap again is no change: it does not warn a second time.
        await client.put(SPEND_CAP, json={"monthly_cap_usd": "1.00"}, headers=owner.headers)
    assert sorted(r.status_code for r in responses) == [202] * 3 + [402] * 17
    assert len(await warnings_to(ctx, owner.email)) == 1
    assert len([m for m in await outbox(ctx) if "spend cap" in m.subject]) == 1


async def test_a_cap_lowered_below_what_is_spent_refuses_at_once_and_raised_admits_again(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, subscribe: Subscribe
) -> None:
    owner = await signup()
    await set_plan(ctx, owner.organization_id, "metered")
    await subscribe(owner.organization_id)
    org = await key_of(ctx, owner)
    assert await submit(client, org, 6) == [202] * 6  # $0.30, no cap yet
    lowered = await client.put(SPEND_CAP, json={"monthly_cap_usd": "0.10"}, headers=owner.headers)
    assert (lowered.json()["overage_usd"], lowered.json()["share_used"]) == ("0.30", 3.0)
    assert await submit(client, org, 1) == [402]
    await client.put(SPEND_CAP, json={"monthly_cap_usd": "0.40"}, headers=owner.headers)
    assert await submit(client, org, 2) == [202, 402]


async def test_the_highest_cap_on_a_cheap_plan_admits_overage(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    """$10,000,000 at $0.001 a task is ten billion tasks: past a 32-bit integer."""
    org = await tenant(plan="cheap")
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 1_000_000_000)
    assert await submit(client, org, 5) == [202] * 5
    status = (await client.get(SPEND_CAP, headers=org.headers)).json()
    assert (status["tasks_over_plan"], status["overage_usd"]) == (2, "0.00")
