"""A task past the plan's `tasks_per_month`: overage for a paying organization, within its cap.

The spend cap becomes a limit on the same atomic counter that holds the plan's included tasks:
included + the overage tasks the cap still pays for after the compute units recorded so far.
So concurrent submissions near the cap take exactly the tasks it allows, as at the plan's own
limit. Compute units are recorded after a task runs: they count toward the cap as they come,
so a task already running may end past it by its own compute units.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.caps.errors import SpendCapReached
from saassy.billing.caps.month import compute_units_in, month_overage
from saassy.billing.caps.repository import SpendCapRepository
from saassy.billing.caps.warnings import WARN_AT, warn_near_cap
from saassy.billing.projection import overage_tasks_within
from saassy.billing.repository import SubscriptionRepository
from saassy.billing.standing import paying
from saassy.billing.stripe_api import billing_enabled
from saassy.config import Settings
from saassy.kit.errors import QuotaExceeded
from saassy.notifications.quota import quota_reserved
from saassy.plans.catalog import Plan
from saassy.quotas.periods import TASKS, quota_window
from saassy.quotas.service import reserve_in_plan, reserve_up_to


def cents_to_usd(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


async def reserve_monthly_task(
    session: AsyncSession,
    settings: Settings,
    plan: Plan,
    organization_id: uuid.UUID,
    now: datetime,
) -> uuid.UUID:
    """One task of the month's quota, or past it as overage when the organization pays for
    that; QuotaExceeded (402) when it does not, SpendCapReached (402) past its cap."""
    try:
        reserved = await reserve_in_plan(session, plan, organization_id, TASKS, now=now)
    except QuotaExceeded:
        # Only at the plan's edge: the subscription and the cap are read here, not before.
        if not await _sells_overage(session, settings, plan, organization_id, now):
            raise
    else:
        window = quota_window(plan, TASKS, now)
        await quota_reserved(session, settings, plan, organization_id, window, reserved.used)
        return reserved.reservation_id
    return await _reserve_overage(session, settings, plan, organization_id, now)


async def _sells_overage(
    session: AsyncSession,
    settings: Settings,
    plan: Plan,
    organization_id: uuid.UUID,
    now: datetime,
) -> bool:
    """Billing is on, the plan prices a task past it, and the subscription is paid up."""
    if plan.overage_usd_per_task is None or not billing_enabled(settings):
        return False
    subscription = await SubscriptionRepository(session).of_organization(organization_id)
    return paying(subscription, now, timedelta(days=settings.billing_grace_days))


async def _reserve_overage(
    session: AsyncSession,
    settings: Settings,
    plan: Plan,
    organization_id: uuid.UUID,
    now: datetime,
) -> uuid.UUID:
    window = quota_window(plan, TASKS, now)
    cap = await SpendCapRepository(session).get_for(organization_id)
    if cap is None:
        unlimited = await reserve_up_to(session, organization_id, window, None)
        assert unlimited is not None
        return unlimited.reservation_id
    # Both set: reserve_in_plan refused within a plan that sells overage (_sells_overage).
    assert plan.overage_usd_per_task is not None
    assert plan.tasks_per_month is not None
    cap_usd = cents_to_usd(cap.monthly_cap_cents)
    # Unpriced compute units cost nothing: no need to add up the month's ledger for them.
    compute_units = (
        await compute_units_in(session, organization_id, window)
        if plan.overage_usd_per_compute_unit is not None
        else Decimal(0)
    )
    so_far = await month_overage(
        session, plan, organization_id, now, tasks_counted=0, compute_units=compute_units
    )
    room = overage_tasks_within(cap_usd, so_far.compute_units_usd, plan.overage_usd_per_task)
    limit = None if room is None else plan.tasks_per_month + room
    reserved = await reserve_up_to(session, organization_id, window, limit)
    if reserved is None:
        refused_at = await month_overage(
            session, plan, organization_id, now, compute_units=compute_units
        )
        raise SpendCapReached(cap_usd, refused_at.total_usd, window.resets_at)
    projection = await month_overage(
        session,
        plan,
        organization_id,
        now,
        tasks_counted=reserved.used,
        compute_units=compute_units,
    )
    if (
        cap_usd > 0
        and projection.exact_usd >= WARN_AT * cap_usd
        and cap.warned_for_period != window.start
    ):
        await warn_near_cap(session, settings, organization_id, window, cap_usd, projection)
    return reserved.reservation_id
