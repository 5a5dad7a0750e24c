"""API keys of the organization the dashboard works in: listed, created (the key shown once, in
the answer to the form and nowhere else), rotated and revoked; admins and owners only, as in the
API."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.api_keys import service
from saassy.api_keys.schemas import DEFAULT_OVERLAP_S, ApiKeyCreate, ApiKeyRotate
from saassy.auth.dependencies import key_expired
from saassy.deps import RequestOrigin, Session, SettingsDep
from saassy.kit.errors import SaassyError
from saassy.kit.pagination import PageParams, decode_cursor
from saassy.kit.time import utcnow
from saassy.models import ApiKey, ApiKeyScope
from saassy.web.caller import Caller, DashboardCaller
from saassy.web.forms import FormInvalid, error_of, form_data, parse_form, status_of_refusal
from saassy.web.templating import redirect, render

router = APIRouter()

PAGE = "/app/api-keys"
KEYS_PER_PAGE = 50

# The dashboard offers one scope per key (each includes the ones before it) and a few lifetimes;
# the API takes any list of scopes and any expiry within the next 366 days.
SCOPE_CHOICES = (
    (ApiKeyScope.admin, "Admin: everything an API key may do"),
    (ApiKeyScope.tasks_write, "Tasks: submit and cancel tasks, and read"),
    (ApiKeyScope.read, "Read only: GET requests"),
)
EXPIRY_CHOICES = (
    ("", "No expiry"),
    ("7", "In 7 days"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("365", "In a year"),
)
OVERLAP_CHOICES = (
    (0, "no longer"),
    (3600, "1 more hour"),
    (DEFAULT_OVERLAP_S, "24 more hours"),
    (7 * 86400, "7 more days"),
    (30 * 86400, "30 more days"),
)


def key_state(api_key: ApiKey, now: datetime) -> str:
    """What the list says of a key: revoked, expired, rotating (in its overlap) or active."""
    if api_key.revoked_at is not None:
        return "revoked"
    if key_expired(api_key.expires_at, now):
        return "expired"
    return "rotating" if api_key.rotated_at is not None else "active"


def _expiry_of(days: str) -> datetime | str | None:
    """The chosen lifetime as an expiry; anything but a number of days is left for the form's
    validation to refuse."""
    if not days:
        return None
    return utcnow() + timedelta(days=int(days)) if days.isdigit() else days


async def keys_page(
    request: Request,
    session: Session,
    caller: DashboardCaller,
    settings: SettingsDep,
    *,
    cursor: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    service.ensure_key_manager(caller.principal, caller.organization)
    params = PageParams(limit=KEYS_PER_PAGE, after=decode_cursor(cursor) if cursor else None)
    keys, next_cursor = await service.list_api_keys(
        session, caller.principal, caller.organization.id, params
    )
    now = utcnow()
    context: dict[str, Any] = {
        "keys": keys,
        "states": {key.id: key_state(key, now) for key in keys},
        "scope_choices": SCOPE_CHOICES,
        "expiry_choices": EXPIRY_CHOICES,
        "overlap_choices": OVERLAP_CHOICES,
        "default_overlap_s": DEFAULT_OVERLAP_S,
        "creators": await service.creators_of(session, keys),
        "next_cursor": next_cursor,
        "first_page": cursor is None,
        "errors": errors or {},
        "values": values or {},
        "base_url": settings.base_url.rstrip("/"),
    }
    return render(request, "app/api_keys/list.html", context, status_code=status_code)


@router.get("/api-keys", response_class=HTMLResponse)
async def list_keys(
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    cursor: str | None = None,
) -> Response:
    return await keys_page(request, session, caller, settings, cursor=cursor)


@router.post("/api-keys", response_class=HTMLResponse)
async def create_key(
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> Response:
    """Create a key and show it in this answer: never in a URL, a cookie or a later page."""
    values = await form_data(request)
    try:
        service.ensure_key_manager(caller.principal, caller.organization)
        body = parse_form(
            ApiKeyCreate,
            {
                "name": values.get("name", ""),
                "scopes": [values.get("scope") or ApiKeyScope.admin.value],
                "expires_at": _expiry_of(values.get("expires_in_days", "")),
            },
        )
        api_key, key = await service.create_api_key(
            session,
            caller.principal,
            caller.organization.id,
            body.name,
            scopes=body.scopes,
            expires_at=body.expires_at,
            origin=origin,
        )
    except FormInvalid as exc:
        return await keys_page(
            request, session, caller, settings, errors=exc.errors, values=values, status_code=422
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await keys_page(
            request,
            session,
            caller,
            settings,
            errors=error_of(exc),
            values=values,
            status_code=status,
        )
    return render(
        request,
        "app/api_keys/created.html",
        {"api_key": api_key, "key": key, "base_url": settings.base_url.rstrip("/")},
        status_code=201,
        # `render` already forbids caching; the key must not reach another site either.
        headers={"Referrer-Policy": "no-referrer"},
    )


@router.post("/api-keys/{key_id}/rotate", response_class=HTMLResponse)
async def rotate_key(
    key_id: uuid.UUID,
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> Response:
    """Replace a key; the new one is shown in this answer, the old one works for the overlap."""
    values = await form_data(request)
    try:
        body = parse_form(ApiKeyRotate, {"overlap_s": values.get("overlap_s") or DEFAULT_OVERLAP_S})
        new, key, old = await service.rotate_api_key(
            session,
            caller.principal,
            caller.organization,
            key_id,
            timedelta(seconds=body.overlap_s),
            origin=origin,
        )
    except FormInvalid as exc:
        return await keys_page(
            request, session, caller, settings, errors=exc.errors, status_code=422
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await keys_page(
            request, session, caller, settings, errors=error_of(exc), status_code=status
        )
    return render(
        request,
        "app/api_keys/created.html",
        {"api_key": new, "key": key, "replaced": old, "base_url": settings.base_url.rstrip("/")},
        status_code=201,
        headers={"Referrer-Policy": "no-referrer"},
    )


@router.post("/api-keys/{key_id}/revoke")
async def revoke_key(
    key_id: uuid.UUID, request: Request, caller: Caller, session: Session, origin: RequestOrigin
) -> Response:
    await service.revoke_api_key(
        session, caller.principal, caller.organization, key_id, origin=origin
    )
    return redirect(
        request, PAGE, message="API key revoked; requests made with it are refused from now on."
    )
