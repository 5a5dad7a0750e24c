"""50 concurrent submissions near the cap never admit more overage than the cap allows."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from sqlalchemy import func, select

from saassy.billing.caps.errors import SpendCapReached
from saassy.billing.caps.overage import reserve_monthly_task
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import Task
from tests.billing.overage.conftest import NOOP, TASKS, Subscribe, set_cap
from tests.concurrency import admitted, race
from tests.conftest import client_for
from tests.quotas.conftest import counter_value, reservation_count
from tests.tasks.conftest import Tenant

CONCURRENT = 50


async def test_50_concurrent_submissions_near_the_cap_admit_exactly_what_it_allows(
    app: FastAPI, ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()  # 3 included, then $0.10 a task
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 100)  # $1.00: ten tasks past the plan
    async with client_for(app) as client:
        for _ in range(10):  # 3 included and 7 past: $0.70 spent, three tasks left
            assert (await client.post(TASKS, json=NOOP, headers=org.headers)).status_code == 202
        responses = await asyncio.gather(
            *(client.post(TASKS, json=NOOP, headers=org.headers) for _ in range(CONCURRENT))
        )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] * 3 + [402] * (CONCURRENT - 3), [
        r.text for r in responses if r.status_code != 402
    ]
    codes = {r.json()["error"]["code"] for r in responses if r.status_code == 402}
    assert codes == {"spend_cap_reached"}
    assert await counter_value(ctx, org.organization_id, "tasks") == 13
    async with ctx.sessionmaker() as session:
        tasks = await session.scalar(
            select(func.count()).where(Task.organization_id == org.organization_id)
        )
    assert tasks == 13


async def test_50_reservations_racing_in_open_transactions_take_exactly_the_cap(
    ctx: AppContext, tenant: Tenant, subscribe: Subscribe
) -> None:
    org = await tenant()
    await subscribe(org.organization_id)
    await set_cap(ctx, org.organization_id, 50)  # five tasks past the plan
    settings = ctx.settings
    plan = settings.catalog.plans["metered"]
    now = utcnow()
    async with ctx.sessionmaker() as session, session.begin():
        for _ in range(4):  # 3 included, 1 past: four tasks of overage left
            await reserve_monthly_task(session, settings, plan, org.organization_id, now)

    outcomes = await race(
        ctx,
        lambda session: reserve_monthly_task(session, settings, plan, org.organization_id, now),
        CONCURRENT,
    )
    assert admitted(outcomes, SpendCapReached) == 4
    assert await counter_value(ctx, org.organization_id, "tasks") == 8
    assert await reservation_count(ctx, org.organization_id) == 8
