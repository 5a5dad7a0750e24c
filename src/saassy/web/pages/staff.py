"""Staff pages: every tenant, their usage and plan, every task, and the engine's health.

Only staff reach them (StaffCaller); anyone else gets the same 404 as for a page that does not
exist. Reads go across tenants on purpose, through the admin repositories, each bounded.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from saassy.admin.repository import StaffOrganizationRepository, StaffTaskRepository
from saassy.admin.schemas import PlanAssignment
from saassy.admin.service import set_plan
from saassy.audit.actors import Actor
from saassy.deps import RequestOrigin, Session, SettingsDep
from saassy.kit.errors import NotFound, SaassyError
from saassy.kit.pagination import PageParams, decode_cursor, encode_cursor
from saassy.kit.time import month_start, utcnow
from saassy.models import Organization, TaskStatus
from saassy.quotas.periods import TASKS
from saassy.quotas.storage_repository import LEVEL, STORAGE
from saassy.web.caller import StaffCaller
from saassy.web.forms import FormInvalid, form_data, parse_form
from saassy.web.pages.staff_overrides import (
    FIELDS,
    OverridesInvalid,
    field_for_error,
    form_values,
    overrides_from_form,
    plan_values,
)
from saassy.web.pages.usage_view import usage_of
from saassy.web.templating import redirect, render

router = APIRouter(prefix="/staff")
PAGE_SIZE = 50

Cursor = Annotated[str | None, Query(max_length=200)]


def _params(cursor: str | None) -> PageParams:
    try:
        after = decode_cursor(cursor) if cursor else None
    except SaassyError:
        after = None  # a mangled link starts over rather than failing
    return PageParams(limit=PAGE_SIZE, after=after)


@router.get("/organizations", response_class=HTMLResponse)
async def organizations(
    request: Request,
    staff: StaffCaller,
    session: Session,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=120)] = "",
    cursor: Cursor = None,
) -> Response:
    """Every organization with its owner, plan, tasks this period and storage."""
    repository = StaffOrganizationRepository(session)
    params = _params(cursor)
    text = q.strip()
    rows = await (repository.search_page(params, text) if text else repository.page(params))
    page = list(rows[:PAGE_SIZE])
    ids = [o.id for o in page]
    now = utcnow()
    last = page[-1] if len(rows) > PAGE_SIZE else None
    return render(
        request,
        "app/staff/organizations.html",
        {
            "q": text,
            "organizations": page,
            "owners": await repository.owners_of(ids),
            "tasks": await repository.counters_of(ids, TASKS, month_start(now)),
            "storage": await repository.counters_of(ids, STORAGE, LEVEL),
            "plans": settings.catalog.plans,
            "next_cursor": encode_cursor(last.created_at, last.id) if last else None,
            "paged": cursor is not None,
        },
    )


async def _organization(session: Session, organization_id: uuid.UUID) -> Organization:
    organization = await StaffOrganizationRepository(session).get(organization_id)
    if organization is None:
        raise NotFound("Organization")
    return organization


async def _detail(
    request: Request,
    session: Session,
    settings: SettingsDep,
    organization: Organization,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    usage = await usage_of(session, settings.catalog, organization)
    members = await StaffOrganizationRepository(session).members_of(organization.id)
    return render(
        request,
        "app/staff/organization.html",
        {
            "organization": organization,
            "usage": usage,
            "members": members,
            "plans": settings.catalog.plans,
            "fields": FIELDS,
            "defaults": plan_values(settings.catalog.plan(organization.plan)),
            "values": values
            if values is not None
            else {"plan": organization.plan, **form_values(organization.plan_overrides or {})},
            "errors": errors or {},
        },
        status_code=status_code,
    )


@router.get("/organizations/{organization_id}", response_class=HTMLResponse)
async def organization_detail(
    request: Request,
    staff: StaffCaller,
    session: Session,
    settings: SettingsDep,
    organization_id: uuid.UUID,
) -> Response:
    """One organization: usage against its effective plan, its plan and overrides, members."""
    organization = await _organization(session, organization_id)
    return await _detail(request, session, settings, organization)


@router.post("/organizations/{organization_id}/plan", response_class=HTMLResponse)
async def change_plan(
    request: Request,
    staff: StaffCaller,
    session: Session,
    settings: SettingsDep,
    organization_id: uuid.UUID,
    origin: RequestOrigin,
) -> Response:
    """Put the organization on a plan with overrides, validated as the admin API does."""
    organization = await _organization(session, organization_id)
    values = await form_data(request)
    try:
        overrides = overrides_from_form(values)
        assignment = parse_form(
            PlanAssignment, {"plan": values.get("plan", ""), "overrides": overrides or None}
        )
        await set_plan(
            session,
            settings.catalog,
            organization.id,
            assignment.plan,
            assignment.overrides,
            actor=Actor.of(staff.principal, origin, staff=True),
        )
    except (OverridesInvalid, FormInvalid) as exc:
        errors = {field_for_error(key): message for key, message in exc.errors.items()}
        return await _detail(
            request, session, settings, organization, values=values, errors=errors, status_code=422
        )
    except SaassyError as exc:
        if exc.status_code == 404:
            raise
        errors = {field_for_error(exc.field or "form"): exc.message}
        return await _detail(
            request,
            session,
            settings,
            organization,
            values=values,
            errors=errors,
            status_code=exc.status_code if 400 <= exc.status_code < 500 else 422,
        )
    plan = settings.catalog.plans[assignment.plan]
    extra = (
        f" with {len(overrides)} override{'s' if len(overrides) != 1 else ''}" if overrides else ""
    )
    return redirect(
        request,
        f"/app/staff/organizations/{organization.id}",
        message=f"{organization.name} is now on the {plan.name} plan{extra}.",
    )


@router.get("/tasks", response_class=HTMLResponse)
async def tasks(
    request: Request,
    staff: StaffCaller,
    session: Session,
    settings: SettingsDep,
    organization: Annotated[str, Query(max_length=64)] = "",
    status: Annotated[str, Query(max_length=16)] = "",
    type: Annotated[str, Query(max_length=64)] = "",
    cursor: Cursor = None,
) -> Response:
    """Recent tasks of every tenant, filtered by organization, status and type."""
    errors: dict[str, str] = {}
    organization_id: uuid.UUID | None = None
    if organization.strip():
        try:
            organization_id = uuid.UUID(organization.strip())
        except ValueError:
            errors["organization"] = "Enter an organization's id (a UUID)."
    chosen_status = status if status in TaskStatus.__members__ else None
    rows: Any = []
    if not errors:
        rows = await StaffTaskRepository(session).page(
            _params(cursor),
            organization_id,
            TaskStatus(chosen_status) if chosen_status else None,
            type.strip() or None,
        )
    page = list(rows[:PAGE_SIZE])
    last = page[-1] if len(rows) > PAGE_SIZE else None
    names = await StaffOrganizationRepository(session).names_of(
        list({task.organization_id for task in page})
    )
    return render(
        request,
        "app/staff/tasks.html",
        {
            "tasks": page,
            "names": names,
            "filters": {
                "organization": organization.strip(),
                "status": chosen_status or "",
                "type": type.strip(),
            },
            "statuses": list(TaskStatus),
            "types": sorted(settings.catalog.task_types),
            "errors": errors,
            "next_cursor": encode_cursor(last.created_at, last.id) if last else None,
            "paged": cursor is not None,
        },
        status_code=422 if errors else 200,
    )
