"""The organization's members and invitations: roles changed and members removed by the API's
rules (rank, last owner), invitations sent, sent again and revoked."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.deps import Limiter, RequestOrigin, Session, SettingsDep
from saassy.kit.errors import RateLimited, SaassyError
from saassy.kit.pagination import PageParams, decode_cursor
from saassy.models import Role
from saassy.organizations import invitations, service
from saassy.organizations.schemas import InvitationCreate, MemberUpdate
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

PAGE = "/app/organization/members"
MEMBERS_PER_PAGE = 50
INVITATIONS_SHOWN = 100


async def members_page(
    request: Request,
    session: Session,
    caller: DashboardCaller,
    settings: SettingsDep,
    *,
    cursor: str | None = None,
    error: str | None = None,
    invite_errors: dict[str, str] | None = None,
    invite_values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """Members (a page of them), pending invitations and the invite form; `error` above them."""
    organization = caller.current
    params = PageParams(limit=MEMBERS_PER_PAGE, after=decode_cursor(cursor) if cursor else None)
    members, next_cursor = await service.list_members(
        session, caller.principal, organization.id, params
    )
    is_admin = caller.can(Role.admin)
    pending: list[Any] = []
    more_pending = False
    if is_admin:
        pending, after = await invitations.list_pending(
            session,
            caller.principal,
            organization.id,
            PageParams(limit=INVITATIONS_SHOWN, after=None),
        )
        more_pending = after is not None
    # What the caller may hand out: an owner any role, an admin up to admin.
    grantable = [r for r in Role if r.rank <= caller.organization.role.rank]
    context: dict[str, Any] = {
        "organization": organization,
        "role": caller.organization.role,
        "is_admin": is_admin,
        "is_owner": caller.can(Role.owner),
        "members": [(m, email, Role(m.role)) for m, email in members],
        "next_cursor": next_cursor,
        "first_page": cursor is None,
        "pending": pending,
        "more_pending": more_pending,
        "grantable": grantable,
        "roles": list(Role),
        "error": error,
        "invite_errors": invite_errors or {},
        "invite_values": invite_values or {"role": Role.member.value},
        "tab": "members",
        "base_url": settings.base_url.rstrip("/"),
    }
    return render(request, "app/organization/members.html", context, status_code=status_code)


@router.get("/organization/members", response_class=HTMLResponse)
async def list_members(
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    cursor: str | None = None,
) -> Response:
    return await members_page(request, session, caller, settings, cursor=cursor)


@router.post("/organization/members/{user_id}/role")
async def change_role(
    user_id: uuid.UUID,
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> Response:
    values = await form_data(request)
    try:
        body = parse_form(MemberUpdate, {"role": values.get("role", "")})
        await service.change_member_role(
            session, caller.principal, caller.current.id, user_id, body.role, origin=origin
        )
    except FormInvalid:
        return await members_page(
            request,
            session,
            caller,
            settings,
            error="Choose owner, admin or member.",
            status_code=422,
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await members_page(
            request, session, caller, settings, error=exc.message, status_code=status
        )
    return redirect(request, PAGE, message="Role changed.")


@router.post("/organization/members/{user_id}/remove")
async def remove_member(
    user_id: uuid.UUID,
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> Response:
    try:
        await service.remove_member(
            session, caller.principal, caller.current.id, user_id, origin=origin
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await members_page(
            request, session, caller, settings, error=exc.message, status_code=status
        )
    if user_id == caller.user.id:
        return redirect(request, "/app", message="You left the organization.")
    return redirect(request, PAGE, message="Member removed.")


@router.post("/organization/invitations")
async def invite(
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    origin: RequestOrigin,
) -> Response:
    values = await form_data(request)
    try:
        body = parse_form(
            InvitationCreate,
            {"email": values.get("email", ""), "role": values.get("role") or Role.member.value},
        )
        await invitations.invite(
            session,
            settings,
            limiter,
            caller.principal,
            caller.current.id,
            email=body.email,
            role=body.role,
            origin=origin,
        )
    except FormInvalid as exc:
        return await members_page(
            request,
            session,
            caller,
            settings,
            invite_errors=exc.errors,
            invite_values=values,
            status_code=422,
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        page = await members_page(
            request,
            session,
            caller,
            settings,
            invite_errors=error_of(exc),
            invite_values=values,
            status_code=status,
        )
        if isinstance(exc, RateLimited):
            page.headers.update(exc.headers)  # Retry-After, X-RateLimit-*
        return page
    return redirect(request, PAGE, message="Invitation sent.")


@router.post("/organization/invitations/{invitation_id}/resend")
async def resend_invitation(
    invitation_id: uuid.UUID,
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    origin: RequestOrigin,
) -> Response:
    try:
        await invitations.resend(
            session,
            settings,
            limiter,
            caller.principal,
            caller.current.id,
            invitation_id,
            origin=origin,
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        page = await members_page(
            request, session, caller, settings, error=exc.message, status_code=status
        )
        if isinstance(exc, RateLimited):
            page.headers.update(exc.headers)  # Retry-After, X-RateLimit-*
        return page
    return redirect(
        request, PAGE, message="Invitation sent again; the earlier link no longer works."
    )


@router.post("/organization/invitations/{invitation_id}/revoke")
async def revoke_invitation(
    invitation_id: uuid.UUID,
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
) -> Response:
    try:
        await invitations.revoke(session, caller.principal, caller.current.id, invitation_id)
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await members_page(
            request, session, caller, settings, error=exc.message, status_code=status
        )
    return redirect(request, PAGE, message="Invitation revoked; its link no longer works.")
