"""A cap changed while tasks are being admitted: every admission is before the change (the
change's answer counts it) or after it (it obeys the new cap), never both at once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from fastapi import FastAPI

from saassy.billing.caps.overage import reserve_monthly_task
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.organizations.repository import OrganizationRepository
from tests.billing.overage.conftest import NOOP, SPEND_CAP, TASKS, Subscribe, set_plan
from tests.billing.overage.test_spend_cap_admission import submit
from tests.conftest import SignUp, client_for
from tests.quotas.conftest import issue_api_key
from tests.tasks.conftest import TenantKey

IN_FLIGHT = 0.5  # seconds the admission stays uncommitted while the cap is changed


@pytest.mark.parametrize("cap_before", ["1.00", None])
async def test_a_cap_lowered_during_an_admission_answers_with_that_admission(
    app: FastAPI, ctx: AppContext, signup: SignUp, subscribe: Subscribe, cap_before: str | None
) -> None:
    owner = await signup()
    organization_id = uuid.UUID(owner.organization_id)
    await set_plan(ctx, organization_id, "metered")
    await subscribe(organization_id)
    org = TenantKey(organization_id, await issue_api_key(ctx, owner.organization_id))
    settings = ctx.settings
    plan = settings.catalog.plans["metered"]
    async with client_for(app) as client:
        if cap_before is not None:
            await client.put(SPEND_CAP, json={"monthly_cap_usd": cap_before}, headers=owner.headers)
        assert await submit(client, org, 3) == [202] * 3
        # A submission between its admission and its commit, as tasks.service runs it: the
        # organization held live, a task past the plan reserved under the cap it read.
        async with ctx.sessionmaker() as session, session.begin():
            assert await OrganizationRepository(session).hold_live(organization_id)
            await reserve_monthly_task(session, settings, plan, organization_id, utcnow())
            lowering = asyncio.create_task(
                client.put(SPEND_CAP, json={"monthly_cap_usd": "0"}, headers=owner.headers)
            )
            await asyncio.sleep(IN_FLIGHT)
        lowered = await lowering
        assert lowered.status_code == 200, lowered.text
        # The answer to the change already counts the admission that read the old cap: nothing
        # decided under the old cap lands after the owner was told where the month stands.
        assert (lowered.json()["tasks_over_plan"], lowered.json()["overage_usd"]) == (1, "0.10")
        now = (await client.get(SPEND_CAP, headers=owner.headers)).json()
        assert now["overage_usd"] == lowered.json()["overage_usd"]
        refused = await client.post(TASKS, json=NOOP, headers=org.headers)
        assert refused.json()["error"]["code"] == "spend_cap_reached"


async def test_puts_racing_a_flood_of_submissions_admit_no_more_than_the_highest_cap(
    app: FastAPI, ctx: AppContext, signup: SignUp, subscribe: Subscribe
) -> None:
    owner = await signup()
    organization_id = uuid.UUID(owner.organization_id)
    await set_plan(ctx, organization_id, "metered")
    await subscribe(organization_id)
    org = TenantKey(organization_id, await issue_api_key(ctx, owner.organization_id))
    caps = ["0.50", "0.20", "0.00", "0.30", "0.10"]  # at most five tasks past the plan
    async with client_for(app) as client:
        await client.put(SPEND_CAP, json={"monthly_cap_usd": caps[0]}, headers=owner.headers)
        puts = iter(caps)
        calls = [
            client.put(SPEND_CAP, json={"monthly_cap_usd": next(puts)}, headers=owner.headers)
            if n % 8 == 5
            else client.post(TASKS, json=NOOP, headers=org.headers)
            for n in range(40)
        ]
        responses = await asyncio.gather(*calls)
        final = (await client.get(SPEND_CAP, headers=owner.headers)).json()
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 202, 402}, [r.text for r in responses if r.status_code >= 500]
    assert statuses.count(202) <= 3 + 5
    assert final["tasks_over_plan"] <= 5
