"""Meter reports from the ledger: windows, included units, late usage, one writer, sums."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from saassy.billing.meters import MeterKey
from saassy.billing.reconciliation import Reconciliation, reconcile
from saassy.billing.usage_reports import build_meter_reports
from saassy.billing.windows import identifier, last_closed, window_at
from saassy.config import Settings
from saassy.context import AppContext
from saassy.models import MeterReport, MeterReportStatus, Organization, QuotaReservation
from tests.billing.ledger import billed_organization, overage_config, record_tasks

HOUR = timedelta(hours=1)


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(config=overage_config(tmp_path))


T0 = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)  # a window's start


async def reports(
    ctx: AppContext, organization_id: uuid.UUID, meter: MeterKey
) -> list[tuple[datetime, int]]:
    async with ctx.sessionmaker() as session:
        rows = await session.scalars(
            select(MeterReport)
            .where(MeterReport.organization_id == organization_id, MeterReport.meter == meter.value)
            .order_by(MeterReport.window_start)
        )
        return [(r.window_start.replace(tzinfo=UTC), int(r.value)) for r in rows]


async def build(ctx: AppContext, now: datetime, window_s: int = 3600) -> int:
    return await build_meter_reports(ctx.sessionmaker, ctx.settings.catalog, window_s, now)


def test_windows_tile_the_hour_and_close_a_margin_after_their_end() -> None:
    quarter = timedelta(minutes=15)
    assert window_at(datetime(2026, 11, 3, 12, 34, 56, tzinfo=UTC), quarter).start == datetime(
        2026, 11, 3, 12, 30, tzinfo=UTC
    )
    # an hour's window closes 5 minutes after its end; a minute's, 5 seconds after
    assert last_closed(T0 + 3 * HOUR + timedelta(minutes=4, seconds=59), HOUR).start == T0 + HOUR
    assert last_closed(T0 + 3 * HOUR + timedelta(minutes=5), HOUR).start == T0 + 2 * HOUR
    minute = timedelta(minutes=1)
    assert last_closed(T0 + timedelta(seconds=64), minute).start == T0 - minute
    assert last_closed(T0 + timedelta(seconds=65), minute).start == T0
    window = window_at(T0, HOUR)
    assert window.start.timestamp() <= window.timestamp < window.end.timestamp()


def test_identifiers_are_stable_short_and_of_stripes_characters() -> None:
    organization = uuid.UUID("6f1c8f0e-0000-4000-8000-000000000001")
    first = identifier(organization, MeterKey.tasks, T0)
    assert first == identifier(organization, MeterKey.tasks, T0.astimezone(UTC))
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,100}", first)
    others = {
        identifier(organization, MeterKey.compute_units, T0),
        identifier(organization, MeterKey.tasks, T0 + HOUR),
        identifier(uuid.uuid4(), MeterKey.tasks, T0),
    }
    assert first not in others
    assert len(others) == 3


@pytest.mark.parametrize("seconds", [30, 7 * 60, 7200])
def test_the_window_divides_an_hour(
    settings_factory: Callable[..., Settings], seconds: int
) -> None:
    with pytest.raises(ValidationError):
        settings_factory(billing_window_s=seconds)
    assert settings_factory(billing_window_s=300).billing_window_s == 300


async def test_included_tasks_are_subtracted_and_the_month_sums_to_the_ledger(
    ctx: AppContext,
) -> None:
    organization = await billed_organization(ctx)  # 10 tasks included
    minutes = [T0 + timedelta(minutes=5 * i) for i in range(8)]
    await record_tasks(ctx, organization, minutes)  # 8 in the first hour
    await record_tasks(ctx, organization, [t + HOUR for t in minutes])  # 16 by the second
    await record_tasks(ctx, organization, [t + 2 * HOUR for t in [*minutes, T0]])  # 25
    assert await build(ctx, T0 + 3 * HOUR + timedelta(minutes=5)) == 5
    assert await reports(ctx, organization, MeterKey.tasks) == [(T0 + HOUR, 6), (T0 + 2 * HOUR, 9)]
    # 1.8 GB-seconds a task: 0.5 thousandths of a CU, counted when whole
    assert await reports(ctx, organization, MeterKey.compute_units) == [
        (T0, 4), (T0 + HOUR, 4), (T0 + 2 * HOUR, 4),
    ]  # fmt: skip
    # 25 - 10 tasks, floor(45 GB-s / 3.6) thousandths: what the ledger says of the month
    assert await build(ctx, T0 + 4 * HOUR) == 0
    async with ctx.sessionmaker() as session:
        result = await reconcile(
            session, ctx.settings.catalog, None, T0.date().replace(day=1), 3600, T0 + 4 * HOUR
        )
    assert {(line.meter, line.ledger, line.pending) for line in result.lines} == {
        (MeterKey.tasks, 15, 15),
        (MeterKey.compute_units, 12, 12),
    }


async def test_late_usage_lands_in_the_next_window_never_lost_never_twice(ctx: AppContext) -> None:
    organization = await billed_organization(ctx, plan="starter", overrides={"tasks_per_month": 0})
    await record_tasks(ctx, organization, [T0 + timedelta(minutes=10)])
    await build(ctx, T0 + HOUR + timedelta(minutes=5))
    # an attempt that ended at T0+50min, committed after its window was reported
    await record_tasks(ctx, organization, [T0 + timedelta(minutes=50)])
    await record_tasks(ctx, organization, [T0 + HOUR + timedelta(minutes=1)])
    await build(ctx, T0 + 2 * HOUR + timedelta(minutes=5))
    assert await reports(ctx, organization, MeterKey.tasks) == [(T0, 1), (T0 + HOUR, 2)]
    assert await reports(ctx, organization, MeterKey.compute_units) == []  # not priced


async def test_two_builders_write_each_report_once(ctx: AppContext) -> None:
    organizations = [await billed_organization(ctx, f"cus_{i}") for i in range(3)]
    for organization in organizations:
        await record_tasks(ctx, organization, [T0 + timedelta(minutes=i) for i in range(30)])
    now = T0 + HOUR + timedelta(minutes=5)
    written = await asyncio.gather(*(build(ctx, now) for _ in range(4)))
    assert sum(written) == 3 * 2  # one report per organization and meter
    for organization in organizations:
        assert await reports(ctx, organization, MeterKey.tasks) == [(T0, 20)]


async def test_a_months_last_windows_are_reported_after_it_ends(ctx: AppContext) -> None:
    organization = await billed_organization(ctx, plan="starter", overrides={"tasks_per_month": 0})
    end = datetime(2026, 12, 1, tzinfo=UTC)
    await record_tasks(ctx, organization, [end - timedelta(minutes=30), end + timedelta(minutes=1)])
    # admitted on November's last evening (its quota counted in November), ended after midnight
    await record_tasks(ctx, organization, [end + timedelta(minutes=2)])
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(QuotaReservation)
            .where(QuotaReservation.closed_at == end + timedelta(minutes=2))
            .values(period_start=date(2026, 11, 1))
        )
    await build(ctx, end - timedelta(minutes=20))
    assert await reports(ctx, organization, MeterKey.tasks) == []
    await build(ctx, end + timedelta(minutes=10))
    assert await reports(ctx, organization, MeterKey.tasks) == [(end - HOUR, 1)]
    await build(ctx, end + HOUR + timedelta(minutes=5))
    # the task is billed with the month it ended in, as its compute units are
    assert await reports(ctx, organization, MeterKey.tasks) == [(end - HOUR, 1), (end, 2)]
    async with ctx.sessionmaker() as session:
        periods = sorted(str(p) for p in await session.scalars(select(MeterReport.period_start)))
    assert periods == ["2026-11-01", "2026-12-01"]


async def test_late_usage_after_a_months_end_is_carried_into_the_next_month_once(
    ctx: AppContext,
) -> None:
    organization = await billed_organization(ctx, plan="starter", overrides={"tasks_per_month": 0})
    end = datetime(2026, 12, 1, tzinfo=UTC)
    await record_tasks(ctx, organization, [end - timedelta(minutes=50)])
    await build(ctx, end + timedelta(minutes=10))  # November's last window, in its invoice's hour
    # committed late (the database was out of reach at midnight), stamped in November
    await record_tasks(ctx, organization, [end - timedelta(minutes=10)])
    await record_tasks(ctx, organization, [end + timedelta(minutes=30)])  # December's own
    assert await build(ctx, end + timedelta(minutes=20)) == 0  # November's windows are written
    assert await build(ctx, end + timedelta(minutes=40)) == 0  # November's invoice is closing
    assert await build(ctx, end + HOUR + timedelta(minutes=5)) == 2
    assert await build(ctx, end + HOUR + timedelta(minutes=6)) == 0
    await record_tasks(ctx, organization, [end - timedelta(minutes=5)])  # later still
    assert await build(ctx, end + 2 * HOUR + timedelta(minutes=5)) == 1
    async with ctx.sessionmaker() as session:
        rows = list(await session.scalars(select(MeterReport).order_by(MeterReport.created_at)))
    november, december = date(2026, 11, 1), date(2026, 12, 1)
    assert sorted(
        (r.window_start.replace(tzinfo=UTC), r.usage_period, r.period_start, int(r.value))
        for r in rows
    ) == [
        (end - HOUR, november, november, 1),
        (end, november, december, 1),  # carried over: billed on December's invoice
        (end, december, december, 1),  # the same window's own report
        (end + HOUR, november, december, 1),
    ]
    assert len({r.identifier for r in rows}) == 4
    assert identifier(organization, MeterKey.tasks, end) in {r.identifier for r in rows}
    result = await reconcile_november(ctx)
    assert [(line.meter, line.ledger, line.pending) for line in result.lines] == [
        (MeterKey.tasks, 3, 3)
    ]


async def test_a_month_left_unreported_past_its_invoice_goes_on_the_next_one(
    ctx: AppContext,
) -> None:
    """The builder down from November 3 until December 9: November is billed in December."""
    organization = await billed_organization(ctx, plan="starter", overrides={"tasks_per_month": 0})
    await record_tasks(ctx, organization, [T0, T0 + timedelta(days=20)])
    now = T0 + timedelta(days=36)
    assert await build(ctx, now) == 1
    async with ctx.sessionmaker() as session:
        report = await session.scalar(select(MeterReport))
    assert report is not None
    assert (report.status, report.value, report.usage_period, report.period_start) == (
        MeterReportStatus.pending,
        "2",
        date(2026, 11, 1),
        date(2026, 12, 1),
    )
    assert report.window_start.replace(tzinfo=UTC) == last_closed(now, HOUR).start


async def reconcile_november(ctx: AppContext) -> Reconciliation:
    async with ctx.sessionmaker() as session:
        return await reconcile(
            session, ctx.settings.catalog, None, date(2026, 11, 1), 3600, datetime.now(UTC)
        )


async def test_a_plan_without_overage_prices_reports_nothing(ctx: AppContext) -> None:
    organization = await billed_organization(ctx, plan="free", overrides={"tasks_per_month": 0})
    await record_tasks(ctx, organization, [T0])
    assert await build(ctx, T0 + 2 * HOUR) == 0
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Organization).where(Organization.id == organization).values(plan="starter")
        )
    assert await build(ctx, T0 + 2 * HOUR) == 1  # priced now: the month's overage so far
