"""`/api/v1/webhooks/endpoints`: the active organization's webhook endpoints.

Signed-in admins and owners only: an API key is refused first, 403 `user_required` whatever its
scopes; a member gets 403 `role_required`; an id of another organization is a 404 for every
signed-in caller: the service looks it up before it checks the role.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from saassy.auth.dependencies import CurrentOrganization, CurrentPrincipal
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import Limiter, RequestOrigin, Session, SettingsDep
from saassy.kit.pagination import Page, PageParams, page_params
from saassy.models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from saassy.webhooks import service
from saassy.webhooks.schemas import (
    AttemptOut,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointUpdate,
    MessageDetail,
    MessageOut,
    SecretRotated,
)

router = APIRouter(prefix="/webhooks/endpoints", tags=["webhooks"], dependencies=[READ_OR_ADMIN])
Pages = Annotated[PageParams, Depends(page_params)]


def _endpoint_out(endpoint: WebhookEndpoint) -> EndpointOut:
    return EndpointOut.model_validate(endpoint)


def webhook_id(message: WebhookMessage) -> str:
    return f"msg_{message.id.hex}"


def _message_out(message: WebhookMessage) -> MessageOut:
    return MessageOut(
        id=message.id,
        webhook_id=webhook_id(message),
        event_type=message.event_type,
        status=message.status,
        attempts=message.total_attempts,
        next_attempt_at=message.next_attempt_at,
        delivered_at=message.delivered_at,
        last_error=message.last_error,
        created_at=message.created_at,
    )


def _attempt_out(attempt: WebhookAttempt) -> AttemptOut:
    return AttemptOut.model_validate(attempt)


@router.get("")
async def list_endpoints(
    active: CurrentOrganization, principal: CurrentPrincipal, session: Session, page: Pages
) -> Page[EndpointOut]:
    """The active organization's endpoints, oldest first (never their secrets)."""
    rows, next_cursor = await service.list_endpoints(session, principal, active, page)
    return Page(items=[_endpoint_out(row) for row in rows], next_cursor=next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_endpoint(
    body: EndpointCreate,
    active: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> EndpointCreated:
    """Add an endpoint; its signing secret is in this answer only."""
    endpoint, secret = await service.create_endpoint(
        session, settings, principal, active, body, origin=origin
    )
    return EndpointCreated(**_endpoint_out(endpoint).model_dump(), secret=secret)


@router.get("/{endpoint_id}")
async def get_endpoint(
    endpoint_id: uuid.UUID,
    active: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
) -> EndpointOut:
    """One endpoint of the active organization."""
    return _endpoint_out(await service.get_endpoint(session, principal, active, endpoint_id))


@router.patch("/{endpoint_id}")
async def update_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    active: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> EndpointOut:
    """Change the URL, event types, description, or enable/disable the endpoint."""
    endpoint = await service.update_endpoint(
        session, settings, principal, active, endpoint_id, body, origin=origin
    )
    return _endpoint_out(endpoint)


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_endpoint(
    endpoint_id: uuid.UUID,
    active: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    origin: RequestOrigin,
) -> Response:
    """Delete the endpoint and its delivery log."""
    await service.delete_endpoint(session, principal, active, endpoint_id, origin=origin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{endpoint_id}/rotate-secret")
async def rotate_secret(
    endpoint_id: uuid.UUID,
    active: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> SecretRotated:
    """A new signing secret (shown once); the old one signs too for 24 hours."""
    endpoint, secret = await service.rotate_secret(
        session, settings, principal, active, endpoint_id, origin=origin
    )
    assert endpoint.previous_secret_expires_at is not None
    return SecretRotated(
        secret=secret, previous_secret_expires_at=endpoint.previous_secret_expires_at
    )


@router.get("/{endpoint_id}/messages")
async def list_messages(
    endpoint_id: uuid.UUID,
    active: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    page: Pages,
) -> Page[MessageOut]:
    """The endpoint's delivery log, newest first."""
    rows, next_cursor = await service.list_messages(session, principal, active, endpoint_id, page)
    return Page(items=[_message_out(row) for row in rows], next_cursor=next_cursor)


@router.get("/{endpoint_id}/messages/{message_id}")
async def get_message(
    endpoint_id: uuid.UUID,
    message_id: uuid.UUID,
    active: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
) -> MessageDetail:
    """A message, its event and every attempt at delivering it."""
    message, attempts = await service.get_message(
        session, principal, active, endpoint_id, message_id
    )
    return MessageDetail(
        **_message_out(message).model_dump(),
        event=message.event,
        attempt_log=[_attempt_out(attempt) for attempt in attempts],
    )


@router.post("/{endpoint_id}/messages/{message_id}/redeliver", status_code=202)
async def redeliver(
    endpoint_id: uuid.UUID,
    message_id: uuid.UUID,
    active: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    origin: RequestOrigin,
) -> MessageOut:
    """Send the message again (same `webhook-id`), on a fresh retry schedule; 409 while it
    is still waiting to be sent, 429 over the organization's limit of messages sent by hand."""
    message = await service.redeliver(
        session, settings, limiter, principal, active, endpoint_id, message_id, origin=origin
    )
    return _message_out(message)


@router.post("/{endpoint_id}/test", status_code=202)
async def send_test_event(
    endpoint_id: uuid.UUID,
    active: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    settings: SettingsDep,
    limiter: Limiter,
    origin: RequestOrigin,
) -> MessageOut:
    """Send a `webhook.test` event to the endpoint (whatever types it takes) to check that
    it receives and verifies deliveries; it shows in the delivery log like any message."""
    message = await service.send_test_event(
        session, settings, limiter, principal, active, endpoint_id, origin=origin
    )
    return _message_out(message)
