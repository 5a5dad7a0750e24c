"""`GET /api/v1/organizations/{id}/audit` (owners) and `GET /api/v1/admin/audit` (staff).

Read only: no route changes or deletes an entry (other methods answer 405).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from saassy.audit import service
from saassy.audit.actions import AuditAction
from saassy.audit.repository import AuditFilter
from saassy.audit.schemas import AuditEntryOut
from saassy.auth.dependencies import CurrentPrincipal, StaffUser
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import Session, SettingsDep
from saassy.kit.pagination import Page, PageParams, page_params
from saassy.kit.time import bound_as_utc
from saassy.models import Role
from saassy.organizations.errors import OwnerRequired
from saassy.organizations.service import caller_role, get_organization

router = APIRouter(tags=["audit"], dependencies=[READ_OR_ADMIN])


async def audit_filter(
    action: Annotated[
        list[AuditAction] | None, Query(description="Only these actions (repeatable).")
    ] = None,
    since: Annotated[datetime | None, Query(description="From this time on (inclusive).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time.")] = None,
) -> AuditFilter:
    return AuditFilter(
        actions=frozenset(action or ()),
        since=bound_as_utc(since) if since else None,
        until=bound_as_utc(until) if until else None,
    )


Filter = Annotated[AuditFilter, Depends(audit_filter)]
Pagination = Annotated[PageParams, Depends(page_params)]


@router.get("/organizations/{organization_id}/audit")
async def organization_audit_log(
    organization_id: uuid.UUID,
    principal: CurrentPrincipal,
    session: Session,
    page: Pagination,
    where: Filter,
) -> Page[AuditEntryOut]:
    """The organization's audit log, newest first (owners only)."""
    organization = await get_organization(session, principal, organization_id)
    if caller_role(principal, organization.id) is not Role.owner:
        raise OwnerRequired("Only an owner may read the audit log.")
    rows, next_cursor = await service.organization_log(
        session, principal.scope, organization.id, page, where
    )
    items = [AuditEntryOut.of(row, for_customer=True) for row in rows]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/admin/audit", tags=["admin"])
async def staff_audit_log(
    staff: StaffUser,
    session: Session,
    settings: SettingsDep,
    page: Pagination,
    where: Filter,
    organization_id: Annotated[uuid.UUID | None, Query()] = None,
    email: Annotated[
        str | None,
        Query(
            max_length=320,
            description="Only what concerns this address: its failed sign-ins, and what its "
            "account did or had done to it.",
        ),
    ] = None,
) -> Page[AuditEntryOut]:
    """Every organization's audit log and the entries of no organization (sign-ins), newest
    first (staff)."""
    if email:
        where = await service.about_address(session, settings.signing_secret, email, where)
    rows, next_cursor = await service.staff_log(session, page, where, organization_id)
    return Page(items=[AuditEntryOut.of(row) for row in rows], next_cursor=next_cursor)
