"""API keys of the organization the dashboard works in: listed, created (the key shown once, in
the answer to the form and nowhere else) and revoked; admins and owners only, as in the API."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.api_keys import service
from saassy.api_keys.schemas import ApiKeyCreate
from saassy.deps import RequestOrigin, Session, SettingsDep
from saassy.kit.errors import SaassyError
from saassy.kit.pagination import PageParams, decode_cursor
from saassy.web.caller import Caller, DashboardCaller
from saassy.web.forms import FormInvalid, error_of, form_data, parse_form, status_of_refusal
from saassy.web.templating import redirect, render

router = APIRouter()

PAGE = "/app/api-keys"
KEYS_PER_PAGE = 50


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
    context: dict[str, Any] = {
        "keys": keys,
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
        body = parse_form(ApiKeyCreate, {"name": values.get("name", "")})
        api_key, key = await service.create_api_key(
            session, caller.principal, caller.organization.id, body.name, origin=origin
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
