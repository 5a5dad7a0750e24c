"""Overage admission and spend caps: a catalog that sells overage, billing on (unless a test
sets `billing_on` false), and the subscription rows billing's webhooks would have written,
inserted straight in the database (admission reads them; it never calls Stripe)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import (
    BillingSubscription,
    Membership,
    Organization,
    Role,
    SpendCap,
    UsageRecord,
)
from saassy.models.tasks import Task
from tests.quotas.conftest import issue_api_key
from tests.tasks.conftest import Tenant, TenantKey

CATALOG = """
default_plan = "free"

[plans.free]
name = "Free"
tasks_per_month = 3
api_rate_limit = "1000/minute"

[plans.metered]
name = "Metered"
tasks_per_month = 3
overage_usd_per_task = 0.10
overage_usd_per_compute_unit = 0.50
api_rate_limit = "1000/minute"

[plans.tasks_only]
name = "Tasks only"
tasks_per_month = 3
overage_usd_per_task = 0.10
api_rate_limit = "1000/minute"

[plans.cheap]
name = "Cheap"
tasks_per_month = 3
overage_usd_per_task = 0.001
api_rate_limit = "1000/minute"

[task_types.noop]
title = "Nothing"
command = ["/bin/true"]
"""
TASKS = "/api/v1/tasks"
SPEND_CAP = "/api/v1/billing/spend-cap"
NOOP = {"type": "noop"}


@pytest.fixture
def billing_on() -> bool:
    return True


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, billing_on: bool
) -> Settings:
    path = tmp_path / "saassy.toml"
    path.write_text(CATALOG, encoding="utf-8")
    stripe: dict[str, Any] = {}
    if billing_on:
        stripe = {"stripe_secret_key": "sk_test_caps", "stripe_webhook_secret": "whsec_caps"}
    return settings_factory(config=path, **stripe)


@pytest.fixture
def tenant(ctx: AppContext) -> Tenant:
    """An organization (on the plan that sells overage unless told) and an API key of it."""

    async def make(plan: str = "metered", overrides: dict[str, Any] | None = None) -> TenantKey:
        organization = Organization(name="Acme", plan=plan, plan_overrides=overrides or {})
        async with ctx.sessionmaker() as session, session.begin():
            session.add(organization)
        return TenantKey(organization.id, await issue_api_key(ctx, organization.id))

    return make


Subscribe = Callable[..., Coroutine[Any, Any, None]]


@pytest.fixture
def subscribe(ctx: AppContext) -> Subscribe:
    """The subscription row as billing's webhook handling writes it from Stripe's copy (no
    Stripe here: admission only reads the row)."""

    async def make(
        organization_id: uuid.UUID | str,
        status: str = "active",
        past_due_since: datetime | None = None,
    ) -> None:
        now = utcnow()
        async with ctx.sessionmaker() as session, session.begin():
            session.add(
                BillingSubscription(
                    organization_id=uuid.UUID(str(organization_id)),
                    stripe_subscription_id=f"sub_{uuid.uuid4().hex}",
                    status=status,
                    plan="metered",
                    current_period_start=now,
                    current_period_end=now,
                    past_due_since=past_due_since,
                    synced_at=now,
                )
            )

    return make


async def set_plan(ctx: AppContext, organization_id: uuid.UUID | str, plan: str) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Organization)
            .where(Organization.id == uuid.UUID(str(organization_id)))
            .values(plan=plan)
        )
    ctx.key_cache.clear()  # as a plan change does (AccessChanged): this one is raw SQL


async def add_member(
    ctx: AppContext, organization_id: uuid.UUID | str, user_id: uuid.UUID | str, role: Role
) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            Membership(
                organization_id=uuid.UUID(str(organization_id)),
                user_id=uuid.UUID(str(user_id)),
                role=role,
            )
        )


async def record_compute_units(
    ctx: AppContext, task_id: str, compute_units: int, attempt: int = 1
) -> None:
    """An attempt's reserved memory as the ledger records it after the run (1 CU = 3600
    GB-seconds)."""
    async with ctx.sessionmaker() as session, session.begin():
        task = await session.get(Task, uuid.UUID(task_id))
        assert task is not None
        session.add(
            UsageRecord(
                organization_id=task.organization_id,
                task_id=task.id,
                task_type=task.type,
                attempt_number=attempt,
                metric="memory_gb_seconds",
                quantity=3600.0 * compute_units,
                recorded_at=utcnow(),
            )
        )


async def set_cap(ctx: AppContext, organization_id: uuid.UUID | str, cents: int) -> None:
    """A cap as PUT /api/v1/billing/spend-cap stores it (tests of admission skip the owner)."""
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            SpendCap(organization_id=uuid.UUID(str(organization_id)), monthly_cap_cents=cents)
        )
