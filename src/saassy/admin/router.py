"""`/api/v1/admin`: the operator's staff manage tenants."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from saassy.admin.repository import StaffOrganizationRepository
from saassy.admin.schemas import AdminOrganization, PlanAssignment
from saassy.admin.service import set_plan
from saassy.audit.actors import Actor
from saassy.auth.dependencies import StaffUser
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import RequestOrigin, Session, SettingsDep
from saassy.kit.errors import NotFound
from saassy.kit.pagination import Page, PageParams, encode_cursor, page_params
from saassy.models import Organization
from saassy.quotas.schemas import StorageRead, UsageRead
from saassy.quotas.service import usage_summary
from saassy.quotas.storage import storage_usage

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[READ_OR_ADMIN])


@router.get("/organizations")
async def list_organizations(
    session: Session,
    staff: StaffUser,
    params: Annotated[PageParams, Depends(page_params)],
    plan: Annotated[str | None, Query(max_length=40)] = None,
) -> Page[AdminOrganization]:
    """Every organization with its plan, newest first."""
    rows = await StaffOrganizationRepository(session).page(params, plan)
    items = [AdminOrganization.model_validate(row) for row in rows[: params.limit]]
    last = items[-1] if len(rows) > params.limit else None
    return Page(items=items, next_cursor=encode_cursor(last.created_at, last.id) if last else None)


async def _organization(session: Session, organization_id: uuid.UUID) -> Organization:
    organization = await StaffOrganizationRepository(session).get(organization_id)
    if organization is None:
        raise NotFound("Organization")
    return organization


@router.get("/organizations/{organization_id}")
async def read_organization(
    session: Session, staff: StaffUser, organization_id: uuid.UUID
) -> AdminOrganization:
    """One organization with its plan and overrides."""
    return AdminOrganization.model_validate(await _organization(session, organization_id))


@router.get("/organizations/{organization_id}/usage")
async def read_organization_usage(
    session: Session, settings: SettingsDep, staff: StaffUser, organization_id: uuid.UUID
) -> UsageRead:
    """An organization's usage and effective limits, as its members see them."""
    organization = await _organization(session, organization_id)
    summary = await usage_summary(session, settings.catalog, organization)
    usage = UsageRead.of(summary)
    start, end = summary.period_start.date(), summary.period_end.date()
    usage.storage = StorageRead.of(
        await storage_usage(session, summary.plan, organization.id, start, end)
    )
    return usage


@router.put("/organizations/{organization_id}/plan")
async def assign_plan(
    session: Session,
    settings: SettingsDep,
    staff: StaffUser,
    organization_id: uuid.UUID,
    assignment: PlanAssignment,
    origin: RequestOrigin,
) -> AdminOrganization:
    """Put an organization on a plan, with optional per-customer overrides."""
    organization = await set_plan(
        session,
        settings.catalog,
        organization_id,
        assignment.plan,
        assignment.overrides,
        actor=Actor.of(staff, origin, staff=True),
    )
    return AdminOrganization.model_validate(organization)
