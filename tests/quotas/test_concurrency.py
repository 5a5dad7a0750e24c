"""Quotas never overspend: N concurrent reservations at the limit admit exactly what is left."""

from __future__ import annotations

from typing import Any

import pytest

from saassy.context import AppContext
from saassy.kit.errors import QuotaExceeded
from saassy.kit.time import next_month_start, utcnow
from saassy.quotas.service import reserve
from tests.concurrency import admitted, race
from tests.quotas.conftest import MakeOrganization, counter_value, reservation_count

CONCURRENT = 50


@pytest.mark.parametrize(
    ("metric", "overrides", "already_used"),
    [
        pytest.param("tasks", {"tasks_per_month": 5}, 4, id="monthly-tasks"),
        pytest.param("tasks", {"tasks_per_month": 1}, 0, id="monthly-tasks-no-counter-yet"),
        pytest.param("action:publish", {"daily_action_caps": {"publish": 3}}, 2, id="daily-cap"),
    ],
)
async def test_concurrent_reservations_with_one_unit_left_admit_exactly_one(
    ctx: AppContext,
    make_organization: MakeOrganization,
    metric: str,
    overrides: dict[str, Any],
    already_used: int,
) -> None:
    organization_id = await make_organization(overrides=overrides)
    catalog = ctx.settings.catalog
    now = utcnow()
    limit = already_used + 1
    if already_used:
        async with ctx.sessionmaker() as session, session.begin():
            await reserve(session, catalog, organization_id, metric, already_used, now=now)

    outcomes = await race(
        ctx, lambda session: reserve(session, catalog, organization_id, metric, now=now), CONCURRENT
    )
    assert admitted(outcomes, QuotaExceeded) == 1
    refusals = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    assert len(refusals) == CONCURRENT - 1
    assert await counter_value(ctx, organization_id, metric) == limit
    assert await reservation_count(ctx, organization_id) == (2 if already_used else 1)
    details = refusals[0].details
    assert details is not None
    assert details["metric"] == metric
    assert details["limit"] == limit
    assert details["used"] == limit
    assert details["resets_at"] is not None


async def test_refusal_says_what_ran_out_and_when_it_resets(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization(overrides={"tasks_per_month": 2})
    now = utcnow()
    async with ctx.sessionmaker() as session, session.begin():
        await reserve(session, ctx.settings.catalog, organization_id, "tasks", 2, now=now)
    async with ctx.sessionmaker() as session, session.begin():
        with pytest.raises(QuotaExceeded) as refused:
            await reserve(session, ctx.settings.catalog, organization_id, "tasks", now=now)
    error = refused.value
    assert error.status_code == 402
    assert error.code == "quota_exceeded"
    assert error.details == {
        "metric": "tasks",
        "limit": 2,
        "used": 2,
        "resets_at": next_month_start(now).isoformat(),
    }
    assert "tasks" in error.message
    assert next_month_start(now).isoformat() in error.message


async def test_a_reservation_larger_than_what_is_left_takes_nothing(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization(overrides={"tasks_per_month": 10})
    async with ctx.sessionmaker() as session, session.begin():
        await reserve(session, ctx.settings.catalog, organization_id, "tasks", 8)
    async with ctx.sessionmaker() as session, session.begin():
        with pytest.raises(QuotaExceeded):
            await reserve(session, ctx.settings.catalog, organization_id, "tasks", 3)
    assert await counter_value(ctx, organization_id, "tasks") == 8


@pytest.mark.parametrize(
    ("overrides", "metric", "amount"),
    [
        pytest.param({"tasks_per_month": 2}, "tasks", 3, id="more-than-the-limit"),
        pytest.param({"daily_action_caps": {"publish": 0}}, "action:publish", 1, id="cap-of-zero"),
    ],
)
async def test_a_reservation_over_the_whole_limit_is_refused_before_any_counter_exists(
    ctx: AppContext,
    make_organization: MakeOrganization,
    overrides: dict[str, Any],
    metric: str,
    amount: int,
) -> None:
    organization_id = await make_organization(overrides=overrides)
    async with ctx.sessionmaker() as session, session.begin():
        with pytest.raises(QuotaExceeded) as refused:
            await reserve(session, ctx.settings.catalog, organization_id, metric, amount)
    assert refused.value.details is not None
    assert refused.value.details["used"] == 0
    assert await counter_value(ctx, organization_id, metric) == 0
    assert await reservation_count(ctx, organization_id) == 0
