"""What staff may do to a tenant: plan assignment (billing will call the same service)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.admin.repository import StaffOrganizationRepository
from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor
from saassy.audit.service import Target, record
from saassy.auth.access_cache import AccessChanged
from saassy.kit.after_commit import after_commit
from saassy.kit.errors import NotFound, ValidationFailed
from saassy.models import Organization
from saassy.models.billing import PlanChangeSource
from saassy.plans.catalog import Catalog, InvalidOverride, apply_overrides
from saassy.plans.changes import change_plan


async def set_plan(
    session: AsyncSession,
    catalog: Catalog,
    organization_id: uuid.UUID,
    plan_key: str,
    overrides: dict[str, Any] | None = None,
    *,
    actor: Actor | None = None,
) -> Organization:
    """Assign a plan and its overrides (replacing any earlier ones) to an organization.

    One audit entry when something changed: `plan.changed` (naming the overrides set with it),
    else `plan.overrides_changed`; `actor` is the staff member (none: the CLI, on the host)."""
    plan = catalog.plans.get(plan_key)
    if plan is None:
        known = ", ".join(sorted(catalog.plans))
        raise ValidationFailed(
            f"There is no plan {plan_key!r} (known: {known}).", code="unknown_plan", field="plan"
        )
    try:
        apply_overrides(plan, overrides or {})
    except InvalidOverride as exc:
        raise ValidationFailed(
            f"overrides.{exc.key}: {exc.message}",
            code="invalid_override",
            field=f"overrides.{exc.key}",
        ) from exc
    organization = await StaffOrganizationRepository(session).get(organization_id)
    if organization is None or organization.deleted_at is not None:
        raise NotFound("Organization")
    # Locked and read again, as billing's changes do: a webhook's change committed meanwhile
    # is the plan this one starts from.
    await session.refresh(organization, with_for_update=True)
    actor = actor or Actor.nobody()
    staff_actor = Actor(actor.user_id, actor.api_key_id, actor.origin, staff=True)
    new_overrides = dict(overrides or {})
    changed_overrides = new_overrides != (organization.plan_overrides or {})
    change = await change_plan(
        session,
        organization,
        plan.key,
        source=PlanChangeSource.staff,
        reference=str(actor.user_id) if actor.user_id else None,
        actor=staff_actor,
        overrides=sorted(new_overrides),
    )
    if change is None and changed_overrides:
        await record(
            session,
            AuditAction.plan_overrides_changed,
            staff_actor,
            organization_id=organization.id,
            target=Target(TargetType.organization, organization.id),
            details={
                "plan": plan.key,
                "from_overrides": sorted(organization.plan_overrides or {}),
                "to_overrides": sorted(new_overrides),
            },
        )
    organization.plan_overrides = new_overrides
    if changed_overrides:
        after_commit(session, AccessChanged())
    await session.flush()
    return organization
