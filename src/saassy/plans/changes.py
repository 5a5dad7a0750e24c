"""Every change of an organization's plan, and its audit row: staff, Stripe and the grace
period all change `organizations.plan` through `change_plan` alone."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.kit.time import utcnow
from saassy.models import Organization
from saassy.models.billing import PlanChange, PlanChangeSource

log = structlog.get_logger(__name__)


async def change_plan(
    session: AsyncSession,
    organization: Organization,
    plan_key: str,
    *,
    source: PlanChangeSource,
    reference: str | None = None,
    now: datetime | None = None,
) -> PlanChange | None:
    """Put the organization on `plan_key`, recording why; None (and no row) when it is on it."""
    if organization.plan == plan_key:
        return None
    change = PlanChange(
        organization_id=organization.id,
        from_plan=organization.plan,
        to_plan=plan_key,
        source=source,
        reference=reference,
        changed_at=now or utcnow(),
    )
    organization.plan = plan_key
    session.add(change)
    await session.flush()
    log.info(
        "plan.changed",
        organization_id=str(organization.id),
        from_plan=change.from_plan,
        to_plan=plan_key,
        source=source.value,
    )
    return change
