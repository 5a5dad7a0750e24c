"""Billed organizations and their ledger, written the way the engine writes them.

A task that ran and ended leaves an attempt's `memory_gb_seconds` in the usage ledger at the
attempt's end, and its monthly `tasks` reservation settled (`closed_at`) when it ends; these
helpers insert those rows directly, at chosen times, so windows can be in the past.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import stripe
from sqlalchemy import insert

from saassy.billing.meters import METERS, meter_create_params
from saassy.config.settings import EXAMPLE_CONFIG
from saassy.context import AppContext
from saassy.kit.repository import table_of
from saassy.kit.time import month_start
from saassy.metering.metrics import MEMORY_GB_SECONDS
from saassy.models import (
    BillingCustomer,
    Organization,
    QuotaReservation,
    ReservationStatus,
    Task,
    TaskStatus,
    UsageRecord,
)
from saassy.quotas.periods import TASKS

INCLUDED = {"tasks_per_month": 10}
# pro prices overage on both meters, starter on tasks only, free on neither.
PRICES = {
    "pro": "overage_usd_per_task = 0.01\noverage_usd_per_compute_unit = 0.05\n",
    "starter": "overage_usd_per_task = 0.02\n",
}


def overage_config(directory: Path) -> Path:
    """The example catalog with overage prices on pro and starter."""
    text = re.sub(r"(?m)^overage_usd_per_\w+ = .*\n", "", EXAMPLE_CONFIG.read_text())
    for plan, prices in PRICES.items():
        text = text.replace(f"[plans.{plan}]\n", f"[plans.{plan}]\n{prices}", 1)
    path = directory / "saassy.toml"
    path.write_text(text)
    return path


async def billed_organization(
    ctx: AppContext, customer: str = "cus_test", *, plan: str = "pro",
    overrides: dict[str, Any] | None = None, name: str = "Acme",
) -> uuid.UUID:  # fmt: skip
    """An organization with a Stripe customer, on pro with 10 tasks included by default."""
    organization = Organization(
        name=name, plan=plan, plan_overrides=INCLUDED if overrides is None else overrides
    )
    async with ctx.sessionmaker() as session, session.begin():
        session.add(organization)
        await session.flush()
        session.add(BillingCustomer(organization_id=organization.id, stripe_customer_id=customer))
    return organization.id


async def record_tasks(
    ctx: AppContext, organization_id: uuid.UUID, ended: Sequence[datetime],
    gb_seconds: float | Sequence[float] = 1.8,
) -> None:  # fmt: skip
    """One task per time in `ended`: it ran once, its usage and its monthly unit at that time."""
    tasks, usage, reservations = [], [], []
    reserved = [gb_seconds] * len(ended) if isinstance(gb_seconds, float) else gb_seconds
    for at, memory in zip(ended, reserved, strict=True):
        task_id = uuid.uuid4()
        tasks.append({"id": task_id, "organization_id": organization_id, "type": "echo",
                      "status": TaskStatus.succeeded, "input": {}, "timeout_s": 10,
                      "run_after": at, "created_at": at})  # fmt: skip
        usage.append({"id": uuid.uuid4(), "organization_id": organization_id, "task_id": task_id,
                      "task_type": "echo", "attempt_number": 1, "metric": MEMORY_GB_SECONDS,
                      "quantity": memory, "recorded_at": at, "created_at": at,
                      })  # fmt: skip
        reservations.append({"id": uuid.uuid4(), "organization_id": organization_id,
                             "metric": TASKS, "period_start": month_start(at), "amount": 1,
                             "status": ReservationStatus.settled, "settled_amount": None,
                             "closed_at": at, "created_at": at})  # fmt: skip
    async with ctx.sessionmaker() as session, session.begin():
        for model, rows in ((Task, tasks), (UsageRecord, usage), (QuotaReservation, reservations)):
            for start in range(0, len(rows), 5000):
                await session.execute(insert(table_of(model)), rows[start : start + 5000])


def stripe_meters(client: stripe.StripeClient) -> None:
    """The two Billing Meters `saassy billing sync` makes, made here directly."""
    for meter in METERS.values():
        client.v1.billing.meters.create(params=meter_create_params(meter))
