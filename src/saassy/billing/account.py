"""An organization's billing state as `GET /api/v1/billing` and the billing page show it."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.repository import SubscriptionRepository
from saassy.billing.schemas import BillingState, SubscriptionState
from saassy.billing.states import PAST_DUE, grace_end
from saassy.config import Settings
from saassy.models import Organization


async def billing_state(
    session: AsyncSession, settings: Settings, organization_id: uuid.UUID, enabled: bool
) -> BillingState:
    """The plan, the subscription as last read from Stripe, and whether a payment failed. The
    plan as it is now, read here: not the one a process may remember for its caller."""
    plan = (
        await session.execute(select(Organization.plan).where(Organization.id == organization_id))
    ).scalar_one()
    row = await SubscriptionRepository(session).of_organization(organization_id)
    subscription = None
    if row is not None:
        grace = (
            grace_end(row.past_due_since, settings.billing_grace_days)
            if row.past_due_since
            else None
        )
        subscription = SubscriptionState(
            status=row.status,
            plan=row.plan,
            current_period_start=row.current_period_start,
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
            past_due_since=row.past_due_since,
            grace_ends_at=grace,
        )
    return BillingState(
        enabled=enabled,
        plan=plan,
        subscription=subscription,
        payment_failed=row is not None and row.status == PAST_DUE,
    )
