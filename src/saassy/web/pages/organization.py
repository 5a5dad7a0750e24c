"""The organization page: its name and details, leaving it, deleting it (the owner types its
name), and creating another organization to work in."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.browser_sessions import choose_organization
from saassy.deps import RequestOrigin, Session, SettingsDep
from saassy.kit.errors import SaassyError
from saassy.models import Role
from saassy.organizations import service
from saassy.organizations.schemas import OrganizationCreate, OrganizationUpdate
from saassy.privacy.exports import recent_exports
from saassy.web.caller import Caller, DashboardCaller
from saassy.web.forms import (
    FormInvalid,
    error_of,
    form_data,
    parse_form,
    status_of_refusal,
)
from saassy.web.templating import redirect, render

router = APIRouter()

PAGE = "/app/organization"


async def general_page(
    request: Request,
    caller: DashboardCaller,
    settings: SettingsDep,
    session: AsyncSession,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The organization's settings, with a form's errors beside its fields."""
    organization = caller.current
    is_owner = caller.can(Role.owner)
    context: dict[str, Any] = {
        "organization": organization,
        "role": caller.organization.role,
        "plan": settings.catalog.plan(caller.organization.plan),
        "is_admin": caller.can(Role.admin),
        "is_owner": is_owner,
        "exports": (
            await recent_exports(session, caller.user.id, organization.id) if is_owner else []
        ),
        "export_expiry_days": settings.export_expiry_days,
        "errors": errors or {},
        "values": values or {},
        "tab": "general",
    }
    return render(request, "app/organization/general.html", context, status_code=status_code)


@router.get("/organization", response_class=HTMLResponse)
async def organization_page(
    request: Request, caller: Caller, settings: SettingsDep, session: Session
) -> Response:
    return await general_page(request, caller, settings, session)


@router.post("/organization/rename")
async def rename(
    request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    values = await form_data(request)
    try:
        body = parse_form(OrganizationUpdate, {"name": values.get("name", "")})
        await service.rename_organization(session, caller.principal, caller.current.id, body.name)
    except FormInvalid as exc:
        return await general_page(
            request, caller, settings, session, errors=exc.errors, values=values, status_code=422
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await general_page(
            request,
            caller,
            settings,
            session,
            errors=error_of(exc),
            values=values,
            status_code=status,
        )
    return redirect(request, PAGE, message="Organization renamed.")


@router.post("/organization/leave")
async def leave(
    request: Request, caller: Caller, session: Session, settings: SettingsDep, origin: RequestOrigin
) -> Response:
    try:
        await service.remove_member(
            session, caller.principal, caller.current.id, caller.user.id, origin=origin
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await general_page(
            request, caller, settings, session, errors={"leave": exc.message}, status_code=status
        )
    return redirect(request, "/app", message="You left the organization.")


@router.post("/organization/delete")
async def delete(
    request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    values = await form_data(request)
    organization = caller.current
    # Checked here as well as in the dialog: without JavaScript the form posts directly.
    if values.get("confirm_name", "").strip() != organization.name:
        return await general_page(
            request,
            caller,
            settings,
            session,
            errors={"confirm_name": "Type the organization's name exactly to delete it."},
            status_code=422,
        )
    try:
        await service.delete_organization(session, caller.principal, organization.id)
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await general_page(
            request, caller, settings, session, errors={"delete": exc.message}, status_code=status
        )
    return redirect(request, "/app", message="Organization deleted.")


def new_page(
    request: Request,
    settings: SettingsDep,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "errors": errors or {},
        "values": values or {},
        "base_url": settings.base_url.rstrip("/"),
    }
    return render(request, "app/organization/new.html", context, status_code=status_code)


@router.get("/organization/new", response_class=HTMLResponse)
async def new_organization_page(
    request: Request, caller: Caller, settings: SettingsDep
) -> Response:
    return new_page(request, settings)


@router.post("/organization/new")
async def create(
    request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    values = await form_data(request)
    try:
        body = parse_form(OrganizationCreate, {"name": values.get("name", "")})
        organization = await service.create_organization(
            session, settings, caller.user.id, body.name
        )
    except FormInvalid as exc:
        return new_page(request, settings, errors=exc.errors, values=values, status_code=422)
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return new_page(request, settings, errors=error_of(exc), values=values, status_code=status)
    await choose_organization(session, caller.browser_session, organization.id)
    return redirect(request, PAGE, message="Organization created; the dashboard now works in it.")
