"""Every change of an organization's plan, its `plan_changes` row and its audit log entry:
staff, Stripe and the grace period all change `organizations.plan` through `change_plan` alone."""

from __future__ import annotations

from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor
from saassy.audit.service import Detail, Target, record
from saassy.auth.access_cache import AccessChanged
from saassy.kit.after_commit import after_commit
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
    actor: Actor | None = None,
    overrides: list[str] | None = None,
) -> PlanChange | None:
    """Put the organization on `plan_key`, recording why; None (and no row) when it is on it.

    `actor` made the change (none: Stripe or the grace sweep); `overrides` names the override
    keys set along with it (staff), for the audit entry."""
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
    after_commit(session, AccessChanged())
    details: dict[str, Detail] = {
        "from_plan": change.from_plan,
        "to_plan": plan_key,
        "source": source.value,
    }
    if overrides is not None:
        details["overrides"] = overrides
    await record(
        session,
        AuditAction.plan_changed,
        actor or Actor.nobody(),
        organization_id=organization.id,
        target=Target(TargetType.organization, organization.id),
        details=details,
    )
    await session.flush()
    log.info(
        "plan.changed",
        organization_id=str(organization.id),
        from_plan=change.from_plan,
        to_plan=plan_key,
        source=source.value,
    )
    return change
