"""`/api/v1/billing/spend-cap`: the active organization's monthly cap on overage."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from saassy.auth.dependencies import CurrentOrganization, OrganizationAdmin
from saassy.auth.principal import ActiveOrganization
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.billing.caps import service
from saassy.billing.caps.schemas import SpendCapOut, SpendCapPut
from saassy.config import Settings
from saassy.deps import Session, SettingsDep
from saassy.kit.time import utcnow
from saassy.plans.catalog import Plan
from saassy.plans.service import plan_with_overrides

router = APIRouter(prefix="/billing/spend-cap", tags=["billing"], dependencies=[READ_OR_ADMIN])


def _plan(settings: Settings, active: ActiveOrganization) -> Plan:
    return plan_with_overrides(settings.catalog, active.plan, active.plan_overrides, active.id)


def _out(found: service.SpendCapStatus) -> SpendCapOut:
    projection = found.projection
    return SpendCapOut(
        monthly_cap_usd=found.monthly_cap_usd,
        period_start=found.period_start,
        period_end=found.period_end,
        overage_usd=projection.total_usd,
        tasks_over_plan=projection.tasks_over,
        compute_units=round(projection.compute_units, 6),
        share_used=None if found.share_used is None else float(found.share_used),
        warned=found.warned,
    )


@router.get("")
async def read_spend_cap(
    session: Session, settings: SettingsDep, active: CurrentOrganization
) -> SpendCapOut:
    """The cap (null when none), this month's projected overage and the share of the cap used."""
    plan = _plan(settings, active)
    return _out(await service.spend_cap_status(session, plan, active.id, utcnow()))


@router.put("")
async def put_spend_cap(
    body: SpendCapPut, session: Session, settings: SettingsDep, active: OrganizationAdmin
) -> SpendCapOut:
    """Set the most overage to be charged in a month (owners and admins)."""
    plan = _plan(settings, active)
    found = await service.set_spend_cap(session, plan, active.id, body.monthly_cap_usd, utcnow())
    return _out(found)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
async def delete_spend_cap(session: Session, active: OrganizationAdmin) -> Response:
    """Remove the cap (owners and admins)."""
    await service.remove_spend_cap(session, active.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
