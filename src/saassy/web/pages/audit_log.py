"""The audit log in the dashboard: an organization's for its owners (a tab of Organization),
everyone's for staff. Read only, newest first, filtered by action and dates in the URL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from saassy.accounts.user_agents import describe_user_agent
from saassy.admin.repository import StaffOrganizationRepository
from saassy.audit import service
from saassy.audit.actions import ACTION_LABELS, AuditAction, TargetType
from saassy.audit.repository import AuditFilter, AuditRepository
from saassy.deps import Session, SettingsDep
from saassy.kit.errors import SaassyError
from saassy.kit.pagination import PageParams, decode_cursor
from saassy.models import AuditEntry, Role
from saassy.organizations.errors import OwnerRequired
from saassy.web.caller import Caller, StaffCaller
from saassy.web.templating import render

router = APIRouter()
PAGE_SIZE = 50

Text = Annotated[str, Query(max_length=64)]
Cursor = Annotated[str | None, Query(max_length=200)]


@dataclass(frozen=True)
class EntryView:
    """One entry as a row shows it: names where they are still known, else short ids."""

    entry: AuditEntry
    label: str
    actor: str
    target: str
    ip: str | None
    device: str | None
    details: list[tuple[str, str]]


@dataclass
class Filters:
    action: str = ""
    since: str = ""
    until: str = ""
    organization: str = ""
    email: str = ""

    def query(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


def _day(text: str, field: str, errors: dict[str, str]) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    except ValueError:
        errors[field] = "Enter a date as YYYY-MM-DD."
        return None


def _filter(filters: Filters, errors: dict[str, str]) -> AuditFilter:
    actions: frozenset[AuditAction] = frozenset()
    if filters.action:
        if filters.action in {a.value for a in AuditAction}:
            actions = frozenset({AuditAction(filters.action)})
        else:
            errors["action"] = "Choose an action from the list."
    since = _day(filters.since, "since", errors)
    until = _day(filters.until, "until", errors)
    # Both days are included: up to the end of `until`.
    return AuditFilter(actions, since, until + timedelta(days=1) if until else None)


def _params(cursor: str | None) -> PageParams:
    try:
        after = decode_cursor(cursor) if cursor else None
    except SaassyError:
        after = None  # a mangled link starts over rather than failing
    return PageParams(limit=PAGE_SIZE, after=after)


def _label(code: str) -> str:
    try:
        return ACTION_LABELS[AuditAction(code)]
    except ValueError:  # a code from a newer version, read by an older one
        return code


def _device(user_agent: str | None) -> str | None:
    """The browser in plain words, or the start of what the client called itself."""
    if not user_agent:
        return None
    described = describe_user_agent(user_agent)
    if described == "Unknown device":
        return user_agent[:40] + ("…" if len(user_agent) > 40 else "")
    return described


def _detail_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


async def _views(
    session: Session,
    rows: Sequence[AuditEntry],
    *,
    staff_view: bool,
    organization_names: dict[uuid.UUID, str] | None = None,
) -> list[EntryView]:
    repository = AuditRepository(session)
    user_ids = {e.actor_user_id for e in rows if e.actor_user_id is not None}
    user_ids |= {e.target_id for e in rows if e.target_type == TargetType.user and e.target_id}
    emails = await repository.emails_of(user_ids)
    key_ids = {e.actor_api_key_id for e in rows if e.actor_api_key_id is not None}
    names = await repository.key_names_of(key_ids)

    def person(user_id: uuid.UUID) -> str:
        return emails.get(user_id, f"deleted user {str(user_id)[:8]}")

    def actor(entry: AuditEntry) -> str:
        if entry.by_staff and not staff_view:
            return "Staff"  # the operator's people stay anonymous to customers
        if entry.actor_user_id is not None:
            who = person(entry.actor_user_id)
            return f"{who} (staff)" if entry.by_staff else who
        if entry.actor_api_key_id is not None:
            return f"API key “{names.get(entry.actor_api_key_id, 'revoked')}”"
        if entry.action == AuditAction.sign_in_failed:
            return "Nobody signed in"
        return "Staff, from the host" if entry.by_staff else "The platform"

    def target(entry: AuditEntry) -> str:
        if entry.target_id is None or (
            entry.target_type == TargetType.user and entry.target_id == entry.actor_user_id
        ):
            return "—"
        name = entry.details.get("name")
        match entry.target_type:
            case TargetType.user:
                return person(entry.target_id)
            case TargetType.api_key | TargetType.secret if name:
                kind = "API key" if entry.target_type == TargetType.api_key else "Secret"
                return f"{kind} {name}"
            case TargetType.organization:
                found = (organization_names or {}).get(entry.target_id)
                return found or "This organization"
        kind = (entry.target_type or "").replace("_", " ").capitalize()
        return f"{kind} {str(entry.target_id)[:8]}"

    return [
        EntryView(
            entry=entry,
            label=_label(entry.action),
            actor=actor(entry),
            target=target(entry),
            # Customers see that staff acted, not who or from where.
            ip=None if entry.by_staff and not staff_view else entry.ip,
            device=None if entry.by_staff and not staff_view else _device(entry.user_agent),
            details=[
                (key.replace("_", " "), _detail_text(value))
                for key, value in entry.details.items()
                if key != "name"
            ],
        )
        for entry in rows
    ]


def _context(
    settings: SettingsDep,
    views: list[EntryView],
    filters: Filters,
    errors: dict[str, str],
    next_cursor: str | None,
) -> dict[str, Any]:
    return {
        "base_url": settings.base_url.rstrip("/"),
        "retention_days": settings.audit_retention_days,
        "entries": views,
        "filters": filters,
        "errors": errors,
        "actions": [(a.value, ACTION_LABELS[a]) for a in AuditAction],
        "next_cursor": next_cursor,
    }


@router.get("/organization/audit", response_class=HTMLResponse)
async def organization_audit(
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    action: Text = "",
    since: Text = "",
    until: Text = "",
    cursor: Cursor = None,
) -> Response:
    """The organization's audit log (owners only, as in the API)."""
    if not caller.can(Role.owner):
        raise OwnerRequired("Only an owner may read the audit log.")
    filters = Filters(action.strip(), since.strip(), until.strip())
    errors: dict[str, str] = {}
    where = _filter(filters, errors)
    page: list[AuditEntry] = []
    next_cursor = None
    if not errors:
        page, next_cursor = await service.organization_log(
            session, caller.principal.scope, caller.current.id, _params(cursor), where
        )
    views = await _views(session, page, staff_view=False)
    context = _context(settings, views, filters, errors, next_cursor)
    context |= {"organization": caller.current, "paged": cursor is not None}
    return render(request, "app/organization/audit.html", context)


@router.get("/staff/audit", response_class=HTMLResponse)
async def staff_audit(
    request: Request,
    staff: StaffCaller,
    session: Session,
    settings: SettingsDep,
    action: Text = "",
    since: Text = "",
    until: Text = "",
    organization: Text = "",
    email: Annotated[str, Query(max_length=320)] = "",
    cursor: Cursor = None,
) -> Response:
    """Every organization's audit log, and the sign-ins that belong to none (staff)."""
    filters = Filters(
        action.strip(), since.strip(), until.strip(), organization.strip(), email.strip()
    )
    errors: dict[str, str] = {}
    where = _filter(filters, errors)
    if filters.email:
        where = await service.about_address(session, settings.signing_secret, filters.email, where)
    organization_id: uuid.UUID | None = None
    if filters.organization:
        try:
            organization_id = uuid.UUID(filters.organization)
        except ValueError:
            errors["organization"] = "Enter an organization's id (a UUID)."
    page: list[AuditEntry] = []
    next_cursor = None
    if not errors:
        page, next_cursor = await service.staff_log(
            session, _params(cursor), where, organization_id
        )
    org_ids = {e.organization_id for e in page if e.organization_id is not None}
    names = await StaffOrganizationRepository(session).names_of(list(org_ids))
    views = await _views(session, page, staff_view=True, organization_names=names)
    context = _context(settings, views, filters, errors, next_cursor)
    context |= {"names": names, "paged": cursor is not None}
    return render(request, "app/staff/audit.html", context)
