"""Reserve, settle and release: what each gives back, and that repeating them changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from saassy.context import AppContext
from saassy.kit.errors import NotFound, QuotaExceeded
from saassy.models import QuotaReservation, ReservationStatus
from saassy.quotas.periods import quota_window
from saassy.quotas.service import release, reserve, reserve_up_to, settle
from tests.quotas.conftest import MakeOrganization, counter_value, reservation_count


async def _reserve(
    ctx: AppContext, organization_id: uuid.UUID, metric: str = "tasks", amount: int = 1
) -> QuotaReservation:
    async with ctx.sessionmaker() as session, session.begin():
        return await reserve(session, ctx.settings.catalog, organization_id, metric, amount)


async def _settle(
    ctx: AppContext, reservation_id: uuid.UUID, actual: int | None = None
) -> QuotaReservation:
    async with ctx.sessionmaker() as session, session.begin():
        await settle(session, reservation_id, actual)
    return await _reservation(ctx, reservation_id)


async def _release(ctx: AppContext, reservation_id: uuid.UUID) -> QuotaReservation:
    async with ctx.sessionmaker() as session, session.begin():
        await release(session, reservation_id)
    return await _reservation(ctx, reservation_id)


async def _reservation(ctx: AppContext, reservation_id: uuid.UUID) -> QuotaReservation:
    async with ctx.sessionmaker() as session:
        found = await session.get(QuotaReservation, reservation_id)
        assert found is not None
        return found


async def test_settle_with_less_than_reserved_gives_the_rest_back_once(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization()
    reservation = await _reserve(ctx, organization_id, amount=5)
    assert await counter_value(ctx, organization_id, "tasks") == 5

    settled = await _settle(ctx, reservation.id, actual=2)
    assert (settled.status, settled.settled_amount) == (ReservationStatus.settled, 2)
    assert settled.closed_at is not None
    assert await counter_value(ctx, organization_id, "tasks") == 2

    again = await _settle(ctx, reservation.id, actual=0)
    assert (again.status, again.settled_amount) == (ReservationStatus.settled, 2)
    assert await counter_value(ctx, organization_id, "tasks") == 2


async def test_settle_without_actual_counts_the_whole_reservation(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization()
    reservation = await _reserve(ctx, organization_id, amount=3)
    settled = await _settle(ctx, reservation.id)
    assert settled.settled_amount == 3
    assert await counter_value(ctx, organization_id, "tasks") == 3


async def test_settle_with_more_than_reserved_counts_it_even_past_the_limit(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization(overrides={"tasks_per_month": 2})
    reservation = await _reserve(ctx, organization_id, amount=2)
    await _settle(ctx, reservation.id, actual=4)
    assert await counter_value(ctx, organization_id, "tasks") == 4


async def test_release_gives_everything_back_once(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization()
    kept = await _reserve(ctx, organization_id, amount=1)
    released = await _reserve(ctx, organization_id, amount=4)
    assert await counter_value(ctx, organization_id, "tasks") == 5

    first = await _release(ctx, released.id)
    assert (first.status, first.settled_amount) == (ReservationStatus.released, 0)
    assert await counter_value(ctx, organization_id, "tasks") == 1

    await _release(ctx, released.id)
    assert await counter_value(ctx, organization_id, "tasks") == 1
    assert (await _settle(ctx, released.id)).status == ReservationStatus.released
    assert await counter_value(ctx, organization_id, "tasks") == 1
    assert (await _settle(ctx, kept.id)).status == ReservationStatus.settled


async def test_release_after_settle_changes_nothing(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization()
    reservation = await _reserve(ctx, organization_id, amount=2)
    await _settle(ctx, reservation.id)
    assert (await _release(ctx, reservation.id)).status == ReservationStatus.settled
    assert await counter_value(ctx, organization_id, "tasks") == 2


async def test_a_rolled_back_transaction_leaves_no_trace(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization()
    await _reserve(ctx, organization_id, amount=1)
    async with ctx.sessionmaker() as session:
        await reserve(session, ctx.settings.catalog, organization_id, "tasks", 3)
        await reserve(session, ctx.settings.catalog, organization_id, "action:publish", 2)
        await session.rollback()
    assert await counter_value(ctx, organization_id, "tasks") == 1
    assert await counter_value(ctx, organization_id, "action:publish") == 0
    assert await reservation_count(ctx, organization_id) == 1


async def test_unlimited_metrics_are_still_counted(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization(plan="enterprise")
    await _reserve(ctx, organization_id, "tasks", amount=1_000_000)
    await _reserve(ctx, organization_id, "action:export", amount=7)
    assert await counter_value(ctx, organization_id, "tasks") == 1_000_000
    assert await counter_value(ctx, organization_id, "action:export") == 7


async def test_windows_are_the_utc_month_and_day(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization()  # free: 100 tasks a month, publish 5 a day
    catalog = ctx.settings.catalog
    late = datetime(2026, 3, 31, 23, 59, tzinfo=UTC)
    early = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
    async with ctx.sessionmaker() as session, session.begin():
        for moment in (late, early):
            await reserve(session, catalog, organization_id, "tasks", 100, now=moment)
            await reserve(session, catalog, organization_id, "action:publish", 5, now=moment)
    async with ctx.sessionmaker() as session, session.begin():
        with pytest.raises(QuotaExceeded) as refused:
            await reserve(session, catalog, organization_id, "action:publish", now=early)
    assert refused.value.details is not None
    assert refused.value.details["resets_at"] == "2026-04-02T00:00:00+00:00"
    assert await counter_value(ctx, organization_id, "tasks") == 200


async def test_bad_calls_are_programming_errors(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization()
    async with ctx.sessionmaker() as session:
        with pytest.raises(ValueError, match="metric"):
            await reserve(session, ctx.settings.catalog, organization_id, "cpu")
        with pytest.raises(ValueError, match="at least 1"):
            await reserve(session, ctx.settings.catalog, organization_id, "tasks", 0)
        with pytest.raises(NotFound):
            await reserve(session, ctx.settings.catalog, uuid.uuid4(), "tasks")
        with pytest.raises(NotFound):
            await release(session, uuid.uuid4())


async def test_a_reservation_up_to_another_limit_than_the_plans_answers_the_counter(
    ctx: AppContext, make_organization: MakeOrganization
) -> None:
    """What billing admits overage with: the plan's window, a limit of the caller's."""
    organization_id = await make_organization(overrides={"tasks_per_month": 2})
    plan = ctx.settings.catalog.plan("free").model_copy(update={"tasks_per_month": 2})
    window = quota_window(plan, "tasks", datetime.now(UTC))
    async with ctx.sessionmaker() as session, session.begin():
        taken = [await reserve_up_to(session, organization_id, window, 4) for _ in range(5)]
    assert [None if r is None else r.used for r in taken] == [1, 2, 3, 4, None]
    async with ctx.sessionmaker() as session, session.begin():
        unlimited = await reserve_up_to(session, organization_id, window, None, amount=10)
    assert unlimited is not None
    assert unlimited.used == 14
    assert await counter_value(ctx, organization_id, "tasks") == 14
    assert await reservation_count(ctx, organization_id) == 5
