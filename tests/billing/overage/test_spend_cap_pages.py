"""The dashboard's task form says a spend cap's refusal as the API does."""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from sqlalchemy import select

from saassy.context import AppContext
from saassy.models import Membership, User
from saassy.quotas import service as quotas
from tests.billing.overage.conftest import Subscribe, set_cap, set_plan
from tests.web.support import browser_for, sign_up, submit


async def test_the_new_task_form_says_the_cap_is_reached(
    app: FastAPI, ctx: AppContext, subscribe: Subscribe
) -> None:
    async with browser_for(app) as browser:
        email = await sign_up(browser)
        async with ctx.sessionmaker() as session:
            organization_id: uuid.UUID | None = await session.scalar(
                select(Membership.organization_id)
                .join(User, User.id == Membership.user_id)
                .where(User.email == email)
            )
        assert organization_id is not None
        await set_plan(ctx, organization_id, "metered")
        await subscribe(organization_id)
        await set_cap(ctx, organization_id, 0)
        async with ctx.sessionmaker() as session, session.begin():
            await quotas.reserve(session, ctx.settings.catalog, organization_id, "tasks", 3)
        refused = await submit(
            browser, "/app/tasks/new", {"type": "noop", "input": "{}"}, page="/app/tasks/new"
        )
    assert refused.status_code == 402
    assert "The monthly spend cap of $0.00 on overage is reached" in refused.text
    assert "PUT /api/v1/billing/spend-cap" in refused.text
