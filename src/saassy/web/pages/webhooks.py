"""Webhook endpoints of the organization the dashboard works in: listed, created (the secret
shown once, in the answer to the form), edited, enabled or disabled, sent a test event,
deleted, and each endpoint's delivery log with redelivery; admins and owners only, as in the
API."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.deps import Context, RequestOrigin, Session, SettingsDep
from saassy.kit.errors import SaassyError
from saassy.kit.pagination import PageParams, decode_cursor
from saassy.web.caller import Caller, DashboardCaller
from saassy.web.forms import FormInvalid, error_of, onto_form, parse_form, status_of_refusal
from saassy.web.templating import redirect, render
from saassy.webhooks import service
from saassy.webhooks.events import WebhookEventType
from saassy.webhooks.schemas import EndpointCreate, EndpointUpdate

router = APIRouter()

PAGE = "/app/webhooks"
PER_PAGE = 50
EVENT_TYPES = [event.value for event in WebhookEventType]


URL_HELP = "Where events are POSTed, such as https://example.com/saassy-events."


async def endpoints_page(
    request: Request,
    session: Session,
    caller: DashboardCaller,
    settings: SettingsDep,
    *,
    cursor: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    params = PageParams(limit=PER_PAGE, after=decode_cursor(cursor) if cursor else None)
    endpoints, next_cursor = await service.list_endpoints(
        session, caller.principal, caller.organization, params
    )
    context: dict[str, Any] = {
        "endpoints": endpoints,
        "event_types": EVENT_TYPES,
        "next_cursor": next_cursor,
        "first_page": cursor is None,
        "errors": errors or {},
        "values": values or {"event_types": []},
        "base_url": settings.base_url.rstrip("/"),
        "url_help": URL_HELP
        + (
            ""
            if settings.webhooks_allow_private
            else " Private and loopback addresses are refused."
        ),
    }
    return render(request, "app/webhooks/list.html", context, status_code=status_code)


async def endpoint_form(request: Request) -> dict[str, Any]:
    """The endpoint form's fields as typed (none of the event types checked: every type)."""
    form = await request.form()
    return {
        "url": str(form.get("url", "")),
        "description": str(form.get("description", "")),
        "event_types": [str(v) for v in form.getlist("event_types")],
    }


@router.get("/webhooks", response_class=HTMLResponse)
async def list_endpoints(
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    cursor: str | None = None,
) -> Response:
    return await endpoints_page(request, session, caller, settings, cursor=cursor)


FIELDS = ("url", "description", "event_types")


@router.post("/webhooks", response_class=HTMLResponse)
async def create_endpoint(
    request: Request, caller: Caller, session: Session, settings: SettingsDep, origin: RequestOrigin
) -> Response:
    """Create an endpoint and show its secret in this answer: never in a URL or a later page."""
    values = await endpoint_form(request)
    try:
        body = parse_form(EndpointCreate, values)
        endpoint, secret = await service.create_endpoint(
            session, settings, caller.principal, caller.organization, body, origin=origin
        )
    except FormInvalid as exc:
        return await endpoints_page(
            request,
            session,
            caller,
            settings,
            errors=onto_form(exc.errors, FIELDS),
            values=values,
            status_code=422,
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await endpoints_page(
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
        "app/webhooks/created.html",
        {"endpoint": endpoint, "secret": secret},
        status_code=201,
        headers={"Referrer-Policy": "no-referrer"},
    )


async def detail_page(
    request: Request,
    session: Session,
    caller: DashboardCaller,
    endpoint_id: uuid.UUID,
    *,
    cursor: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    endpoint = await service.get_endpoint(
        session, caller.principal, caller.organization, endpoint_id
    )
    params = PageParams(limit=PER_PAGE, after=decode_cursor(cursor) if cursor else None)
    messages, next_cursor = await service.list_messages(
        session, caller.principal, caller.organization, endpoint.id, params
    )
    context = {
        "endpoint": endpoint,
        "messages": messages,
        "attempts": await service.attempts_by_message(session, messages),
        "next_cursor": next_cursor,
        "first_page": cursor is None,
        "event_types": EVENT_TYPES,
        "errors": errors or {},
        "values": values
        or {
            "url": endpoint.url,
            "description": endpoint.description,
            "event_types": endpoint.event_types,
        },
    }
    return render(request, "app/webhooks/detail.html", context, status_code=status_code)


@router.get("/webhooks/{endpoint_id}", response_class=HTMLResponse)
async def endpoint_page(
    endpoint_id: uuid.UUID,
    request: Request,
    caller: Caller,
    session: Session,
    cursor: str | None = None,
) -> Response:
    """The endpoint, a form to change it, and its delivery log, newest first."""
    return await detail_page(request, session, caller, endpoint_id, cursor=cursor)


@router.post("/webhooks/{endpoint_id}", response_class=HTMLResponse)
async def edit_endpoint(
    endpoint_id: uuid.UUID,
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> Response:
    """Change the endpoint's URL, description and event types (none checked: every type)."""
    values = await endpoint_form(request)
    try:
        body = parse_form(EndpointUpdate, values)
        await service.update_endpoint(
            session,
            settings,
            caller.principal,
            caller.organization,
            endpoint_id,
            body,
            origin=origin,
        )
    except FormInvalid as exc:
        return await detail_page(
            request,
            session,
            caller,
            endpoint_id,
            errors=onto_form(exc.errors, FIELDS),
            values=values,
            status_code=422,
        )
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return await detail_page(
            request,
            session,
            caller,
            endpoint_id,
            errors=error_of(exc),
            values=values,
            status_code=status,
        )
    return redirect(request, f"{PAGE}/{endpoint_id}", message="Endpoint saved.")


async def queue_and_return(
    request: Request, endpoint_id: uuid.UUID, sending: Awaitable[object], done: str
) -> Response:
    """Queue a send by hand (a test event, a redelivery) and go back to the endpoint's page,
    saying `done` or, when the domain refused, why."""
    try:
        await sending
    except SaassyError as exc:
        status_of_refusal(exc)
        return redirect(request, f"{PAGE}/{endpoint_id}", message=exc.message, kind="error")
    return redirect(request, f"{PAGE}/{endpoint_id}", message=done)


@router.post("/webhooks/{endpoint_id}/test")
async def send_test_event(
    endpoint_id: uuid.UUID,
    request: Request,
    caller: Caller,
    session: Session,
    ctx: Context,
    origin: RequestOrigin,
) -> Response:
    """Queue a `webhook.test` event to the endpoint; it shows in the delivery log."""
    sending = service.send_test_event(
        session,
        ctx.settings,
        ctx.limiter,
        caller.principal,
        caller.organization,
        endpoint_id,
        origin=origin,
    )
    return await queue_and_return(
        request, endpoint_id, sending, "A test event will be sent; see the log below."
    )


@router.post("/webhooks/{endpoint_id}/enabled")
async def set_enabled(
    endpoint_id: uuid.UUID,
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> Response:
    enabled = (await request.form()).get("enabled") == "true"
    await service.update_endpoint(
        session,
        settings,
        caller.principal,
        caller.organization,
        endpoint_id,
        EndpointUpdate(enabled=enabled),
        origin=origin,
    )
    message = "Endpoint enabled." if enabled else "Endpoint disabled; nothing is sent to it."
    return redirect(request, f"{PAGE}/{endpoint_id}", message=message)


@router.post("/webhooks/{endpoint_id}/delete")
async def delete_endpoint(
    endpoint_id: uuid.UUID,
    request: Request,
    caller: Caller,
    session: Session,
    origin: RequestOrigin,
) -> Response:
    await service.delete_endpoint(
        session, caller.principal, caller.organization, endpoint_id, origin=origin
    )
    return redirect(request, PAGE, message="Endpoint deleted; nothing more is sent to it.")


@router.post("/webhooks/{endpoint_id}/messages/{message_id}/redeliver")
async def redeliver(
    endpoint_id: uuid.UUID,
    message_id: uuid.UUID,
    request: Request,
    caller: Caller,
    session: Session,
    ctx: Context,
    origin: RequestOrigin,
) -> Response:
    sending = service.redeliver(
        session,
        ctx.settings,
        ctx.limiter,
        caller.principal,
        caller.organization,
        endpoint_id,
        message_id,
        origin=origin,
    )
    return await queue_and_return(request, endpoint_id, sending, "The message will be sent again.")
