"""`/api/v1/usage`."""

from __future__ import annotations

from fastapi import APIRouter

from saassy.auth.dependencies import CurrentOrganization, CurrentPrincipal
from saassy.kit.deps import Session, SettingsDep
from saassy.kit.errors import NotFound
from saassy.organizations.repository import OrganizationRepository
from saassy.quotas.schemas import UsageRead
from saassy.quotas.service import usage_summary

router = APIRouter(prefix="/usage", tags=["usage"])


@router.get("")
async def read_usage(
    session: Session,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    active: CurrentOrganization,
) -> UsageRead:
    """What the active organization has used this period, and what is left."""
    organization = await OrganizationRepository(session).get_in_scope(active.id, principal.scope)
    if organization is None:
        raise NotFound("Organization")
    return UsageRead.of(await usage_summary(session, settings.catalog, organization))
