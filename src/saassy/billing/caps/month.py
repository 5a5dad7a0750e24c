"""An organization's overage this month as the ledger and the task counter hold it now."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.projection import OveragePrices, Projection, project_overage
from saassy.metering.metrics import GB_SECONDS_PER_COMPUTE_UNIT, MEMORY_GB_SECONDS
from saassy.metering.repository import UsageLedgerRepository
from saassy.plans.catalog import Plan
from saassy.quotas.periods import TASKS, QuotaWindow, quota_window
from saassy.quotas.repository import QuotaCounterRepository


async def compute_units_in(
    session: AsyncSession, organization_id: uuid.UUID, window: QuotaWindow
) -> Decimal:
    """Compute units recorded in the window so far (1 CU = 1 GB reserved for an hour)."""
    gb_seconds = await UsageLedgerRepository(session).total_of(
        organization_id, MEMORY_GB_SECONDS, window.starts_at, window.resets_at
    )
    return Decimal(repr(gb_seconds)) / Decimal(repr(GB_SECONDS_PER_COMPUTE_UNIT))


async def month_overage(
    session: AsyncSession,
    plan: Plan,
    organization_id: uuid.UUID,
    now: datetime,
    *,
    tasks_counted: int | None = None,
    compute_units: Decimal | None = None,
) -> Projection:
    """The month's projected overage: tasks counted (queued and running ones included, as
    their quota is reserved) past the plan, and compute units recorded so far. Figures the
    caller already read are passed in rather than read again."""
    window = quota_window(plan, TASKS, now)
    if tasks_counted is None:
        tasks_counted = await QuotaCounterRepository(session).used(
            organization_id, TASKS, window.start
        )
    if compute_units is None:
        compute_units = await compute_units_in(session, organization_id, window)
    return project_overage(
        tasks_counted=tasks_counted,
        included_tasks=plan.tasks_per_month,
        compute_units=compute_units,
        prices=OveragePrices.of(plan),
    )
