"""The must-hold: usage reaches Stripe exactly, through a sender killed twice and a flaky Stripe.

1,000 tasks with overage across 3 organizations; the meter-event sender runs as its own
process (`saassy billing report-usage --follow`), is killed with SIGKILL twice while it sends
and started again, while the Stripe double answers 500 to 10% of meter events (half of them
after accepting the event: the answer is lost) and 429 to 5%. After recovery, reconciliation
shows ledger - Stripe = 0 for every organization and meter, and no identifier reached Stripe
with a value other than its report's: neither the accepted events nor any identifier sent
again (the double keeps each repeat with the value it carried).

The ledger rows are inserted the way the engine writes them (tests/billing/ledger.py: each
task's attempt usage and its settled monthly reservation at the task's end), spread over the
last 100 one-minute windows: running 1,000 sandboxes would cost minutes, and what is under
test starts at the ledger.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
import stripe
from sqlalchemy import func, select

from saassy.billing.meters import MeterKey
from saassy.billing.overage import MICRO_GB_SECONDS_PER_EVENT_UNIT, micro
from saassy.billing.reconciliation import Reconciliation, reconcile
from saassy.billing.stripe_connection import open_stripe_client
from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import month_start, utcnow
from saassy.models import MeterReport, MeterReportStatus
from tests.billing.billed import billing_settings, saassy_process
from tests.billing.ledger import billed_organization, record_tasks, stripe_meters
from tests.billing.stripe_services import StripeServices

EVENTS = "/v1/billing/meter_events"
TASKS, ORGANIZATIONS, INCLUDED = 1000, 3, 10
RECOVERY_S = 90


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], stripe_services: StripeServices, tmp_path: Path
) -> Settings:
    return billing_settings(settings_factory, stripe_services, tmp_path, window_s=60)


@pytest.fixture
async def sdk(settings: Settings) -> AsyncIterator[stripe.StripeClient]:
    async with open_stripe_client(settings) as client:
        assert client is not None
        yield client


def _wait_for_calls(
    services: StripeServices, at_least: int, sender: subprocess.Popen[bytes]
) -> int:
    deadline = time.monotonic() + RECOVERY_S
    while time.monotonic() < deadline:
        calls = services.requests().get(EVENTS, 0)
        if calls >= at_least:
            return calls
        assert sender.poll() is None, "the sender exited on its own"
        time.sleep(0.01)  # polling what another process did, not synchronisation
    pytest.fail(f"the sender made fewer than {at_least} meter-event calls in {RECOVERY_S} s")


async def _report_states(ctx: AppContext) -> Counter[str]:
    async with ctx.sessionmaker() as session:
        rows = await session.execute(
            select(MeterReport.status, func.count()).group_by(MeterReport.status)
        )
        return Counter({str(status): int(n) for status, n in rows})


async def test_usage_reaches_stripe_exactly_through_kills_500s_and_429s(
    ctx: AppContext, stripe_services: StripeServices, sdk: stripe.StripeClient, tmp_path: Path
) -> None:
    client = stripe_services.client()
    stripe_meters(client)
    organizations = [
        await billed_organization(
            ctx, client.v1.customers.create(params={"email": f"o{i}@example.com"}).id,
            overrides={"tasks_per_month": INCLUDED}, name=f"Org {i}",
        )
        for i in range(ORGANIZATIONS)
    ]  # fmt: skip
    rng = random.Random(11)
    now = utcnow()
    tasks: dict[uuid.UUID, list[tuple[datetime, float]]] = defaultdict(list)
    for _ in range(TASKS):
        ended = now - timedelta(seconds=rng.uniform(120, 100 * 60))
        tasks[rng.choice(organizations)].append((ended, round(rng.uniform(0.1, 20.0), 6)))
    expected: dict[tuple[uuid.UUID, date, MeterKey], int] = {}
    for organization, done in tasks.items():
        await record_tasks(ctx, organization, [t for t, _ in done], [m for _, m in done])
        for period in {month_start(t) for t, _ in done}:
            month = [(t, m) for t, m in done if month_start(t) == period]
            expected[organization, period, MeterKey.tasks] = max(0, len(month) - INCLUDED)
            expected[organization, period, MeterKey.compute_units] = (
                sum(micro(m) for _, m in month) // MICRO_GB_SECONDS_PER_EVENT_UNIT
            )
    stripe_services.set_faults([EVENTS], error_500=0.10, error_429=0.05, seed=5)

    log = tmp_path / "sender.log"
    follow = ("billing", "report-usage", "--follow")
    sender = saassy_process(ctx.settings, log, *follow)
    try:
        seen = 0
        for _ in range(2):  # killed twice while it sends, started again at once
            seen = _wait_for_calls(stripe_services, seen + 120, sender)
            os.kill(sender.pid, signal.SIGKILL)
            sender.wait()
            states = await _report_states(ctx)
            assert states["pending"], states  # killed mid-flight: some still to send
            assert states["sent"], states
            sender = saassy_process(ctx.settings, log, *follow)
        deadline = time.monotonic() + RECOVERY_S
        while (await _report_states(ctx))["pending"]:
            assert sender.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (await _report_states(ctx), log.read_text()[-3000:])
            await asyncio.sleep(0.2)  # polling what another process did
    finally:
        sender.terminate()
        sender.wait(timeout=15)

    assert set((await _report_states(ctx)).keys()) == {MeterReportStatus.sent.value}
    for period in {p for _, p, _ in expected}:
        result = await _reconciled(ctx, sdk, period)
        lines = {(line.organization_id, period, line.meter): line for line in result.lines}
        for key, ledger in expected.items():
            if key[1] != period:
                continue
            line = lines[key]
            assert (line.ledger, line.reported, line.stripe) == (ledger, ledger, ledger), key
            assert line.ledger_minus_stripe == 0
            assert (line.pending, line.not_billable) == (0, 0)
    async with ctx.sessionmaker() as session:
        reports = {r.identifier: int(r.value) for r in await session.scalars(select(MeterReport))}
    accepted = stripe_services.meter_events()
    assert Counter(e["identifier"] for e in accepted).most_common(1)[0][1] == 1
    assert {e["identifier"]: e["value"] for e in accepted} == reports
    # every identifier sent again (a lost answer, a killed sender's claim) carried its value
    repeats = stripe_services.duplicate_meter_events()
    assert repeats, "no report was sent twice: the faults and kills did not bite"
    assert {(r["identifier"], r["value"], r["accepted_value"]) for r in repeats} == {
        (r["identifier"], reports[r["identifier"]], reports[r["identifier"]]) for r in repeats
    }
    assert stripe_services.requests()[EVENTS] > len(reports)  # faults and kills made retries


async def _reconciled(ctx: AppContext, sdk: stripe.StripeClient, period: date) -> Reconciliation:
    async with ctx.sessionmaker() as session:
        return await reconcile(session, ctx.settings.catalog, sdk, period, 60, utcnow())
