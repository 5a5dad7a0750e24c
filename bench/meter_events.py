"""Meter-event reporting from a ledger backlog against the local Stripe double, and reconcile.

`python -m bench.meter_events [--rows 100000] [--runs 3] [--database-url ...]`

A scratch database holds `--rows` attempts' usage (and their settled monthly units) for 20
organizations over the last 8 hours (6 with --quick), so that every 15-minute window of every
organization has overage on both meters: about 1,280 meter reports (960 quick). Each run
starts with no reports and an empty double, then times the three steps an operator's
`saassy billing report-usage` and `saassy billing reconcile` take: building the reports from
the ledger, sending them through the SDK to the double (localstripe behind it, both on
loopback), and reconciling the month.

Events per second are shown against Stripe's documented live-mode limit (1,000/s; the sender
runs at most 900/s) and against a floor measured in the same run: meter events sent straight
through the SDK with the sender's concurrency, no database: what the double itself allows.
The double checks each event's customer with localstripe, so on loopback it, not the sender,
sets the pace (about 100/s on the 2-core VM): the ratio to the floor is the sender's budget.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

import stripe
from sqlalchemy import delete, insert

from bench.report import Row
from bench.stage import Stage, add_database_option, scratch_stage
from bench.stripe_servers import API_KEY, running_stripe_servers
from saassy.billing.meter_events import send_due_reports
from saassy.billing.meters import CUSTOMER_KEY, METERS, VALUE_KEY, MeterKey, meter_create_params
from saassy.billing.pace import STRIPE_EVENTS_PER_S
from saassy.billing.reconciliation import reconcile
from saassy.billing.stripe_connection import open_stripe_client
from saassy.billing.usage_reports import build_meter_reports
from saassy.config import EXAMPLE_CONFIG, Settings, load_settings
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.kit.repository import table_of
from saassy.kit.time import month_start, utcnow
from saassy.metering.metrics import MEMORY_GB_SECONDS
from saassy.models import (
    BillingCustomer,
    MeterReport,
    Organization,
    QuotaReservation,
    ReservationStatus,
    Task,
    TaskStatus,
    UsageRecord,
)
from saassy.quotas.periods import TASKS

TITLE = "Meter events from a ledger backlog, against the local Stripe double"
ROWS = [
    Row("meter_events_reports", "Meter reports from the ledger", "reports"),
    Row("meter_events_build_s", "Building them from the ledger", "s"),
    Row("meter_events_per_s", "Sent, events/s (median of runs)", "/s"),
    Row("meter_events_vs_stripe_limit", "... against Stripe's 1,000/s", "x"),
    Row("meter_events_vs_stripe_limit_min", "... lowest run", "x"),
    Row("meter_events_vs_stripe_limit_max", "... highest run", "x"),
    Row("meter_events_floor_per_s", "Floor: the SDK straight to the double, events/s", "/s"),
    Row("meter_events_vs_floor", "Sender against the floor (median of runs)", "x", at_least=0.8),
    Row("meter_events_reconcile_s", "Reconcile the month (ledger, reports, Stripe)", "s"),
]
ORGANIZATIONS = 20
WINDOW_S = 900
IN_FLIGHT = 32
FLOOR_EVENTS = 1000


@dataclass(frozen=True)
class MeterSizes:
    rows: int = 100_000
    runs: int = 3
    hours: int = 8  # 1,280 reports: what the sender sustains shows in a few seconds


QUICK = MeterSizes(rows=10_000, runs=2, hours=6)


def _catalog() -> str:
    text = re.sub(r"(?m)^overage_usd_per_\w+ = .*\n", "", EXAMPLE_CONFIG.read_text())
    return text.replace(
        "[plans.pro]\n",
        "[plans.pro]\noverage_usd_per_task = 0.01\noverage_usd_per_compute_unit = 0.05\n",
        1,
    )


async def _fill(settings: Settings, rows: int, span: timedelta) -> list[uuid.UUID]:
    """`rows` attempts of the last `span` (this month's part of it), spread evenly."""
    engine = create_engine(settings.resolved_database_url)
    sessionmaker = create_sessionmaker(engine)
    now = utcnow()
    start = max(now - span, now.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
    step = (now - timedelta(minutes=10) - start) / rows
    organizations = [uuid.uuid4() for _ in range(ORGANIZATIONS)]
    async with sessionmaker() as session, session.begin():
        await session.execute(insert(table_of(Organization)), [
            {"id": o, "name": f"Bench {i}", "plan": "pro",
             "plan_overrides": {"tasks_per_month": 10}}
            for i, o in enumerate(organizations)
        ])  # fmt: skip
        for first in range(0, rows, 5000):
            tasks, usage, units = [], [], []
            for n in range(first, min(rows, first + 5000)):
                at, organization, task = (
                    start + n * step,
                    organizations[n % ORGANIZATIONS],
                    uuid.uuid4(),
                )
                tasks.append({"id": task, "organization_id": organization, "type": "echo",
                              "status": TaskStatus.succeeded, "input": {}, "timeout_s": 10,
                              "run_after": at, "created_at": at})  # fmt: skip
                usage.append({"id": uuid.uuid4(), "organization_id": organization, "task_id": task,
                              "task_type": "echo", "attempt_number": 1,
                              "metric": MEMORY_GB_SECONDS, "quantity": 7.25, "recorded_at": at,
                              "created_at": at})  # fmt: skip
                units.append({"id": uuid.uuid4(), "organization_id": organization, "metric": TASKS,
                              "period_start": month_start(at), "amount": 1,
                              "status": ReservationStatus.settled, "closed_at": at,
                              "created_at": at})  # fmt: skip
            await session.execute(insert(table_of(Task)), tasks)
            await session.execute(insert(table_of(UsageRecord)), usage)
            await session.execute(insert(table_of(QuotaReservation)), units)
    await engine.dispose()
    return organizations


def _stripe_objects(
    client: stripe.StripeClient, organizations: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    for meter in METERS.values():
        client.v1.billing.meters.create(params=meter_create_params(meter))
    return {
        o: client.v1.customers.create(params={"email": f"{o}@example.com"}).id
        for o in organizations
    }


async def _one_run(settings: Settings, customers: dict[uuid.UUID, str]) -> dict[str, float]:
    engine = create_engine(settings.resolved_database_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session, session.begin():
            await session.execute(delete(MeterReport))
            await session.execute(delete(BillingCustomer))
            await session.execute(insert(table_of(BillingCustomer)), [
                {"id": uuid.uuid4(), "organization_id": o, "stripe_customer_id": c}
                for o, c in customers.items()
            ])  # fmt: skip
        now = utcnow()
        began = time.perf_counter()
        reports = await build_meter_reports(sessionmaker, settings.catalog, WINDOW_S, now)
        built = time.perf_counter()
        async with open_stripe_client(settings) as client:
            assert client is not None
            done = await send_due_reports(sessionmaker, client, WINDOW_S)
            sent = time.perf_counter()
            async with sessionmaker() as session:
                result = await reconcile(
                    session, settings.catalog, client, month_start(now), WINDOW_S, now
                )
            reconciled = time.perf_counter()
        assert done.sent == reports, (done, reports)
        assert not result.alarming, [line for line in result.alarming][:3]
        return {
            "meter_events_reports": float(reports),
            "meter_events_build_s": built - began,
            "meter_events_per_s": reports / (sent - built),
            "meter_events_reconcile_s": reconciled - sent,
        }
    finally:
        await engine.dispose()


async def _floor(settings: Settings, customers: list[str], events: int) -> float:
    """`events` meter events straight through the SDK, `IN_FLIGHT` at a time: events/s."""
    async with open_stripe_client(settings) as client:
        assert client is not None
        slots = asyncio.Semaphore(IN_FLIGHT)
        name = METERS[MeterKey.tasks].event_name

        async def one(n: int) -> None:
            async with slots:
                await client.v1.billing.meter_events.create_async({
                    "event_name": name, "identifier": f"floor-{n}-{secrets.token_hex(4)}",
                    "payload": {CUSTOMER_KEY: customers[n % len(customers)], VALUE_KEY: "1"},
                })  # fmt: skip

        began = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(events)))
        return events / (time.perf_counter() - began)


def run_meter_event_numbers(sizes: MeterSizes, database_url: str | None) -> dict[str, float]:
    """For `python -m bench`: build, send and reconcile `sizes.runs` times on one backlog."""
    with (
        scratch_stage(1, database_url, "meter-events", _catalog()) as stage,
        running_stripe_servers() as services,
    ):
        settings = _settings(stage, services.api_base, API_KEY)
        organizations = asyncio.run(_fill(settings, sizes.rows, timedelta(hours=sizes.hours)))
        runs, floors = [], []
        for _ in range(sizes.runs):
            services.flush()
            customers = _stripe_objects(services.client(), organizations)
            numbers = asyncio.run(_one_run(settings, customers))
            floors.append(
                asyncio.run(
                    _floor(settings, list(customers.values()), int(numbers["meter_events_reports"]))
                )
            )
            runs.append(numbers)
    per_s = [r["meter_events_per_s"] for r in runs]
    return {
        "meter_events_rows": float(sizes.rows),
        "meter_events_reports": runs[0]["meter_events_reports"],
        "meter_events_build_s": statistics.median(r["meter_events_build_s"] for r in runs),
        "meter_events_per_s": statistics.median(per_s),
        "meter_events_vs_stripe_limit": statistics.median(per_s) / STRIPE_EVENTS_PER_S,
        "meter_events_vs_stripe_limit_min": min(per_s) / STRIPE_EVENTS_PER_S,
        "meter_events_vs_stripe_limit_max": max(per_s) / STRIPE_EVENTS_PER_S,
        "meter_events_floor_per_s": statistics.median(floors),
        "meter_events_vs_floor": statistics.median(
            s / f for s, f in zip(per_s, floors, strict=True)
        ),
        "meter_events_reconcile_s": statistics.median(r["meter_events_reconcile_s"] for r in runs),
    }


def _settings(stage: Stage, api_base: str, key: str) -> Settings:
    return load_settings(
        env="development", config=stage.config, data_dir=stage.data_dir,
        database_url=stage.database_url, run_engine=False, secret_key=secrets.token_urlsafe(48),
        stripe_secret_key=key, stripe_webhook_secret="whsec_bench",  # noqa: S106 - loopback
        stripe_api_base=api_base,
        billing_window_s=WINDOW_S,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.meter_events", description=__doc__)
    parser.add_argument("--rows", type=int, default=MeterSizes.rows)
    parser.add_argument("--runs", type=int, default=MeterSizes.runs)
    parser.add_argument("--hours", type=int, default=MeterSizes.hours)
    add_database_option(parser)
    args = parser.parse_args()
    numbers = run_meter_event_numbers(
        MeterSizes(args.rows, args.runs, args.hours), args.database_url
    )
    for row in ROWS:
        print(f"{row.label}: {numbers[row.key]:.2f} {row.unit}")


if __name__ == "__main__":
    main()
