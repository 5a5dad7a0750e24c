"""The meter-event sender and reconciliation against the Stripe double, through the SDK."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import stripe
from fastapi import FastAPI
from sqlalchemy import select, update

from saassy.billing.meter_events import send_due_reports
from saassy.billing.meters import MeterKey
from saassy.billing.reporting import meter_reporting_loop, reconcile_and_alert, report_usage
from saassy.billing.stripe_connection import open_stripe_client
from saassy.billing.windows import window_at
from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import month_start, utcnow
from saassy.models import MeterReport, MeterReportStatus, OutboxEmail, User
from tests.billing.billed import billing_settings, saassy_process
from tests.billing.ledger import billed_organization, record_tasks, stripe_meters
from tests.billing.stripe_services import StripeServices
from tests.conftest import SignUp
from tests.web.support import browser_for, sign_up

HOUR = timedelta(hours=1)
EVENTS = "/v1/billing/meter_events"


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], stripe_services: StripeServices, tmp_path: Path
) -> Settings:
    return billing_settings(settings_factory, stripe_services, tmp_path)


@pytest.fixture
async def sdk(settings: Settings) -> AsyncIterator[stripe.StripeClient]:
    """The application's own Stripe client."""
    async with open_stripe_client(settings) as client:
        assert client is not None
        yield client


async def customer(stripe_services: StripeServices) -> str:
    sdk = stripe_services.client()
    created: str = sdk.v1.customers.create(params={"email": "a@example.com"}).id
    return created


async def rows(ctx: AppContext) -> list[MeterReport]:
    async with ctx.sessionmaker() as session:
        return list(await session.scalars(select(MeterReport).order_by(MeterReport.window_start)))


async def test_reports_reach_stripe_once_and_a_lost_answer_counts_as_delivered(
    ctx: AppContext, stripe_services: StripeServices, sdk: stripe.StripeClient
) -> None:
    stripe_meters(stripe_services.client())
    organization = await billed_organization(ctx, await customer(stripe_services))
    start = window_at(utcnow() - 3 * HOUR, HOUR).start
    await record_tasks(ctx, organization, [start + timedelta(minutes=i) for i in range(40)])
    done = await report_usage(ctx.sessionmaker, ctx.settings, sdk)
    assert (done.written, done.sending.sent, done.sending.retried) == (2, 2, 0)
    sent = {r.identifier: r for r in await rows(ctx)}
    accepted = stripe_services.meter_events()
    assert {e["identifier"]: e["value"] for e in accepted} == {
        i: int(r.value) for i, r in sent.items()
    }
    assert {r.meter: r.value for r in sent.values()} == {"tasks": "30", "compute_units": "20"}
    assert all(start.timestamp() <= e["timestamp"] < (start + HOUR).timestamp() for e in accepted)
    # the answer was lost: the report goes again, and Stripe's duplicate means delivered
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(MeterReport).values(status=MeterReportStatus.pending, next_attempt_at=utcnow())
        )
    again = await send_due_reports(ctx.sessionmaker, sdk, 3600)
    assert (again.sent, again.failed) == (2, 0)
    assert {r.last_error for r in await rows(ctx)} == {"already at Stripe"}
    assert len(stripe_services.meter_events()) == 2


async def test_stripe_refusing_a_report_is_recorded_and_not_retried(
    ctx: AppContext, stripe_services: StripeServices, sdk: stripe.StripeClient
) -> None:
    stripe_meters(stripe_services.client())
    organization = await billed_organization(ctx, "cus_unknown_to_stripe")
    await record_tasks(ctx, organization, [utcnow() - 3 * HOUR] * 12)
    done = await report_usage(ctx.sessionmaker, ctx.settings, sdk)
    assert (done.sending.sent, done.sending.failed) == (0, 2)
    assert {(r.status, "No such customer" in (r.last_error or "")) for r in await rows(ctx)} == {
        (MeterReportStatus.failed, True)
    }
    calls = stripe_services.requests()[EVENTS]
    await report_usage(ctx.sessionmaker, ctx.settings, sdk)
    assert stripe_services.requests()[EVENTS] == calls


async def test_429s_and_500s_are_retried_until_every_report_is_delivered(
    ctx: AppContext, stripe_services: StripeServices, sdk: stripe.StripeClient
) -> None:
    stripe_meters(stripe_services.client())
    organization = await billed_organization(ctx, await customer(stripe_services))
    first = window_at(utcnow() - 30 * HOUR, HOUR).start
    await record_tasks(ctx, organization, [first + i * HOUR for i in range(24) for _ in range(2)])
    stripe_services.set_faults([EVENTS], error_500=0.3, error_429=0.3, seed=3)
    done = await report_usage(ctx.sessionmaker, ctx.settings, sdk)
    assert done.sending.retried > 0
    for _ in range(60):
        pending = [r for r in await rows(ctx) if r.status == MeterReportStatus.pending]
        if not pending:
            break
        async with ctx.sessionmaker() as session, session.begin():
            await session.execute(update(MeterReport).values(next_attempt_at=utcnow()))
        await send_due_reports(ctx.sessionmaker, sdk, 3600)
    reports = await rows(ctx)
    assert {r.status for r in reports} == {MeterReportStatus.sent}
    accepted = {e["identifier"]: e["value"] for e in stripe_services.meter_events()}
    assert accepted == {r.identifier: int(r.value) for r in reports}


async def test_reconcile_shows_a_difference_exits_1_and_alerts_staff(
    ctx: AppContext, stripe_services: StripeServices, sdk: stripe.StripeClient, tmp_path: Path
) -> None:
    stripe_meters(stripe_services.client())
    organization = await billed_organization(ctx, await customer(stripe_services))
    async with ctx.sessionmaker() as session, session.begin():
        session.add(User(email="staff@example.com", is_staff=True))
    now = utcnow()
    await record_tasks(ctx, organization, [max(now - 2 * HOUR, _month(now))] * 15)
    await report_usage(ctx.sessionmaker, ctx.settings, sdk)
    settled = await reconcile_and_alert(ctx.sessionmaker, ctx.settings, sdk, month_start(now))
    if settled.lines:  # none when the month began less than a window ago
        assert settled.settled
        tasks = [
            (line.ledger, line.stripe) for line in settled.lines if line.meter is MeterKey.tasks
        ]
        assert tasks == [(5, 5)]
    # a report that Stripe never got: the ledger and our reports say more than Stripe
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(MeterReport).values(value="999"))
    log = tmp_path / "reconcile.log"
    period = f"{month_start(now):%Y-%m}"
    process = saassy_process(ctx.settings, log, "billing", "reconcile", "--period", period)
    assert await asyncio.to_thread(process.wait, 60) == (1 if settled.lines else 0), log.read_text()
    if not settled.lines:
        return
    output = log.read_text()
    assert "do not reconcile" in output
    async with ctx.sessionmaker() as session:
        alerts = list(await session.scalars(select(OutboxEmail)))
    assert [(a.to_address, a.subject.startswith(f"Billing does not reconcile for {period}"))
            for a in alerts] == [("staff@example.com", True)]  # fmt: skip
    # run again the same day: the alert is not repeated
    again = saassy_process(ctx.settings, log, "billing", "reconcile", "--period", period)
    assert await asyncio.to_thread(again.wait, 60) == 1
    async with ctx.sessionmaker() as session:
        assert len(list(await session.scalars(select(OutboxEmail)))) == 1


async def test_report_usage_follow_says_where_and_what_each_round_did(
    ctx: AppContext, stripe_services: StripeServices, tmp_path: Path
) -> None:
    stripe_meters(stripe_services.client())
    organization = await billed_organization(ctx, await customer(stripe_services))
    now = utcnow()
    await record_tasks(ctx, organization, [max(now - 2 * HOUR, _month(now))] * 15)
    log = tmp_path / "follow.log"
    process = saassy_process(ctx.settings, log, "billing", "report-usage", "--follow")
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not re.search(r"UTC \d+ reports written; \d+ sent", log.read_text()):
            assert process.poll() is None, log.read_text()
            assert asyncio.get_running_loop().time() < deadline, log.read_text()
            await asyncio.sleep(0.1)  # polling another process's output
    finally:
        process.terminate()
        process.wait(timeout=15)
    output = log.read_text()
    assert (
        f"following: reporting usage to Stripe at {ctx.settings.stripe_api_base} as windows close"
    ) in output
    rounds = re.findall(r"UTC (\d+) reports written; (\d+) sent", output)
    assert rounds, output
    assert all(written != "0" or sent != "0" for written, sent in rounds), output


def _month(now: datetime) -> datetime:
    return datetime(now.year, now.month, 1, tzinfo=UTC)


async def test_staff_read_the_reconciliation_and_others_cannot(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, stripe_services: StripeServices
) -> None:
    account = await signup()
    answer = await client.get("/api/v1/admin/billing/reconciliation", headers=account.headers)
    assert answer.status_code == 403
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(User).values(is_staff=True))
    ctx.user_cache.clear()  # as the change would within SAASSY_USER_ACCESS_CACHE_S: raw SQL here
    bad = await client.get(
        "/api/v1/admin/billing/reconciliation?period=2026-13", headers=account.headers
    )
    assert (bad.status_code, bad.json()["error"]["code"], bad.json()["error"]["field"]) == (
        422, "invalid_period", "period",
    )  # fmt: skip
    good = await client.get(
        "/api/v1/admin/billing/reconciliation?period=2026-11", headers=account.headers
    )
    assert good.status_code == 200, good.text
    assert good.json()["period"] == "2026-11"


async def test_the_background_loop_reports_and_stops(
    ctx: AppContext, stripe_services: StripeServices, settings_factory: Callable[..., Settings],
    tmp_path: Path,
) -> None:  # fmt: skip
    assert meter_reporting_loop(ctx.sessionmaker, settings_factory()) is None  # billing off
    stripe_meters(stripe_services.client())
    organization = await billed_organization(ctx, await customer(stripe_services))
    await record_tasks(ctx, organization, [utcnow() - 2 * HOUR] * 11)
    loop = meter_reporting_loop(ctx.sessionmaker, ctx.settings)
    assert loop is not None

    async def delivered() -> bool:  # Stripe has them, and the loop recorded so
        statuses = {r.status for r in await rows(ctx)}
        return len(stripe_services.meter_events()) >= 2 and statuses == {MeterReportStatus.sent}

    loop.start()
    try:
        async with asyncio.timeout(30):
            while not await delivered():  # noqa: ASYNC110 - another process, and the database
                await asyncio.sleep(0.1)
    finally:
        await loop.stop()
    assert len(stripe_services.meter_events()) == 2


async def test_the_staff_page_shows_each_line_and_refuses_customers(
    app: FastAPI, ctx: AppContext, stripe_services: StripeServices, sdk: stripe.StripeClient
) -> None:
    stripe_meters(stripe_services.client())
    organization = await billed_organization(ctx, await customer(stripe_services), name="Acme")
    now = utcnow()
    await record_tasks(ctx, organization, [max(now - 2 * HOUR, _month(now))] * 12)
    await report_usage(ctx.sessionmaker, ctx.settings, sdk)
    async with browser_for(app) as browser:
        email = await sign_up(browser)
        assert (await browser.get("/app/staff/billing")).status_code == 404
        async with ctx.sessionmaker() as session, session.begin():
            await session.execute(update(User).where(User.email == email).values(is_staff=True))
        page = await browser.get("/app/staff/billing")
        bad = await browser.get("/app/staff/billing?period=2026-13")
    assert page.status_code == 200
    html = re.sub(r"\s+", " ", page.text)
    if now - _month(now) > 2 * HOUR:  # the month began long enough ago to have closed windows
        assert re.search(
            r'Acme</a></th> <td>tasks</td> <td class="num">2</td> <td class="num">2</td>', html
        ), html
    assert "The period is a month written YYYY-MM." in bad.text


async def test_late_usage_carried_into_the_next_month_reconciles_both_months(
    ctx: AppContext, stripe_services: StripeServices, sdk: stripe.StripeClient
) -> None:
    stripe_meters(stripe_services.client())
    organization = await billed_organization(ctx, await customer(stripe_services))
    end = _month(utcnow() - 2 * HOUR)  # a month's end at least two hours ago
    before = end - timedelta(days=1)
    await record_tasks(ctx, organization, [end - timedelta(minutes=50)] * 12)
    await report_usage(ctx.sessionmaker, ctx.settings, sdk, now=end + timedelta(minutes=10))
    await record_tasks(ctx, organization, [end - timedelta(minutes=10)] * 3)  # committed late
    done = await report_usage(ctx.sessionmaker, ctx.settings, sdk, now=end + HOUR * 1.1)
    assert (done.written, done.sending.sent) == (2, 2)  # carried over: 3 tasks, 1.5 -> 1 CU/1000
    carried = int((end + HOUR).timestamp()) - 1  # in the next month, whose invoice is open
    assert sorted(
        e["value"] for e in stripe_services.meter_events() if e["timestamp"] == carried
    ) == [1, 3]
    earlier = await reconcile_and_alert(ctx.sessionmaker, ctx.settings, sdk, month_start(before))
    tasks = [line for line in earlier.lines if line.meter is MeterKey.tasks]
    assert [(t.ledger, t.reported, t.carried_out, t.stripe) for t in tasks] == [(5, 5, 3, 5)]
    assert earlier.settled, earlier.lines
    later = await reconcile_and_alert(ctx.sessionmaker, ctx.settings, sdk, month_start(end))
    tasks = [line for line in later.lines if line.meter is MeterKey.tasks]
    assert [(t.ledger, t.reported, t.carried_in, t.stripe) for t in tasks] == [(0, 0, 3, 0)]
    assert later.settled, later.lines
