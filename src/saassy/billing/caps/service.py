"""Reading and setting an organization's spend cap, with the month's projected overage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.caps.month import month_overage
from saassy.billing.caps.overage import cents_to_usd
from saassy.billing.caps.repository import SpendCapRepository
from saassy.billing.projection import Projection, share_of_cap
from saassy.kit.errors import NotFound
from saassy.organizations.repository import OrganizationRepository
from saassy.plans.catalog import Plan
from saassy.quotas.periods import TASKS, quota_window


@dataclass(frozen=True)
class SpendCapStatus:
    monthly_cap_usd: Decimal | None
    period_start: datetime
    period_end: datetime
    projection: Projection
    share_used: Decimal | None
    warned: bool


async def spend_cap_status(
    session: AsyncSession, plan: Plan, organization_id: uuid.UUID, now: datetime
) -> SpendCapStatus:
    """The cap (if any), this month's projected overage and how much of the cap it uses."""
    cap = await SpendCapRepository(session).get_for(organization_id)
    window = quota_window(plan, TASKS, now)
    projection = await month_overage(session, plan, organization_id, now)
    cap_usd = None if cap is None else cents_to_usd(cap.monthly_cap_cents)
    return SpendCapStatus(
        monthly_cap_usd=cap_usd,
        period_start=window.starts_at,
        period_end=window.resets_at,
        projection=projection,
        share_used=None if cap_usd is None else share_of_cap(projection.exact_usd, cap_usd),
        warned=cap is not None and cap.warned_for_period == window.start,
    )


async def set_spend_cap(
    session: AsyncSession,
    plan: Plan,
    organization_id: uuid.UUID,
    monthly_cap_usd: Decimal,
    now: datetime,
) -> SpendCapStatus:
    """Set or change the cap; it applies from the next admission."""
    # Every admission holds the organization FOR SHARE until it commits (tasks.service): this
    # lock waits for those that read the old cap, so the answer counts them, and holds back
    # the next ones until the new cap is committed. Without it an admission decided under the
    # old cap could land after the owner was told the month's overage under the new one.
    if await OrganizationRepository(session).get_live(organization_id, lock=True) is None:
        raise NotFound("Organization")
    cents = int(monthly_cap_usd.scaleb(2))
    await SpendCapRepository(session).put(organization_id, cents)
    return await spend_cap_status(session, plan, organization_id, now)


async def remove_spend_cap(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """No cap: overage is limited only by the subscription (removing none is no error)."""
    await SpendCapRepository(session).remove(organization_id)
