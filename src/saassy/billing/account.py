"""An organization's billing state as `GET /api/v1/billing` and the billing page show it."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.repository import SubscriptionRepository
from saassy.billing.schemas import BillingState, SubscriptionState
from saassy.billing.states import PAST_DUE, grace_end
from saassy.config import Settings


async def billing_state(
    session: AsyncSession, settings: Settings, organization_id: uuid.UUID, plan: str, enabled: bool
) -> BillingState:
    """The plan, the subscription as last read from Stripe, and whether a payment failed."""
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
