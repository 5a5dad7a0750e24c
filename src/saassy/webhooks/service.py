"""Webhook endpoints: an organization's receivers, their secrets, their delivery log."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor, Origin
from saassy.audit.service import Target, record
from saassy.auth.principal import ActiveOrganization, Principal
from saassy.config import Settings
from saassy.kit.after_commit import after_commit
from saassy.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from saassy.kit.pagination import PageParams, page_of
from saassy.kit.ratelimit import RateLimiter
from saassy.kit.time import utcnow
from saassy.models import (
    Role,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
    WebhookMessageStatus,
)
from saassy.webhooks.destination import DestinationRefused, check_url
from saassy.webhooks.events import TEST_EVENT_TYPE, WEBHOOK_MESSAGES_QUEUED, test_event
from saassy.webhooks.repository import WebhookEndpointRepository, WebhookMessageRepository
from saassy.webhooks.schemas import EndpointCreate, EndpointUpdate
from saassy.webhooks.sealing import secret_sealer
from saassy.webhooks.signing import generate_secret

# How long the secret a rotation replaces keeps signing beside the new one.
ROTATION_OVERLAP = timedelta(hours=24)
# Endpoints an organization may have: each event is a message, and an attempt, per endpoint.
MAX_ENDPOINTS = 20


class EndpointNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Webhook endpoint")


class MessageNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Webhook message")


class UrlRefused(ValidationFailed):
    code = "webhook_url_refused"

    def __init__(self, why: str) -> None:
        super().__init__(f"This URL cannot receive webhooks: {why}.", field="url")


class EndpointLimitReached(Conflict):
    code = "webhook_endpoint_limit"

    def __init__(self) -> None:
        super().__init__(
            f"This organization has {MAX_ENDPOINTS} webhook endpoints, the most it may have; "
            "delete one, or send several event types to one endpoint.",
            details={"limit": MAX_ENDPOINTS},
        )


class MessagePending(Conflict):
    code = "webhook_message_pending"

    def __init__(self) -> None:
        super().__init__(
            "This message is already waiting to be sent to this endpoint; its log shows when "
            "the next attempt is due. Send it again once it is delivered or has failed."
        )


class EndpointDisabled(Conflict):
    code = "webhook_endpoint_disabled"

    def __init__(self) -> None:
        super().__init__("This endpoint is disabled: enable it, then send the test event.")


def ensure_signed_in(principal: Principal) -> None:
    """Endpoints are managed by people, never by an API key, whatever its scopes: refused
    first, before any id is looked up (so another tenant's id tells a key nothing either)."""
    if principal.user_id is None:
        raise Forbidden(
            "Managing webhooks needs a signed-in owner or admin, not an API key: "
            "log in with your e-mail.",
            code="user_required",
        )


def ensure_webhook_manager(principal: Principal, organization: ActiveOrganization) -> None:
    """Endpoints are managed by signed-in admins and owners."""
    ensure_signed_in(principal)
    if organization.role.rank < Role.admin.rank:
        raise Forbidden("Managing webhooks needs the admin role or higher.", code="role_required")


def _checked_url(settings: Settings, url: str) -> str:
    try:
        return check_url(url, allow_private=settings.webhooks_allow_private).url
    except DestinationRefused as exc:
        raise UrlRefused(str(exc)) from None


async def _audit(
    session: AsyncSession,
    action: AuditAction,
    principal: Principal,
    origin: Origin,
    endpoint: WebhookEndpoint,
    **details: str | bool | list[str],
) -> None:
    """The endpoint's id and host: the rest of a URL may carry a receiver's token."""
    host = check_url(endpoint.url, allow_private=True).host[:200]
    await record(
        session,
        action,
        Actor.of(principal, origin),
        organization_id=endpoint.organization_id,
        target=Target(TargetType.webhook_endpoint, endpoint.id),
        details={"host": host, **details},
    )


async def create_endpoint(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    organization: ActiveOrganization,
    body: EndpointCreate,
    *,
    origin: Origin,
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret, which is shown once and stored sealed."""
    ensure_webhook_manager(principal, organization)
    endpoints = WebhookEndpointRepository(session)
    url = _checked_url(settings, body.url)
    if await endpoints.count_in_organization(organization.id) >= MAX_ENDPOINTS:
        raise EndpointLimitReached()
    secret = generate_secret()
    endpoint = await endpoints.add(
        WebhookEndpoint(
            organization_id=organization.id,
            url=url,
            description=body.description,
            event_types=sorted({event.value for event in body.event_types}),
            enabled=body.enabled,
            secret=secret_sealer(settings).seal(secret),
        )
    )
    await _audit(session, AuditAction.webhook_endpoint_created, principal, origin, endpoint)
    return endpoint, secret


async def list_endpoints(
    session: AsyncSession,
    principal: Principal,
    organization: ActiveOrganization,
    params: PageParams,
) -> tuple[list[WebhookEndpoint], str | None]:
    """The organization's endpoints, oldest first, for an admin or owner."""
    ensure_webhook_manager(principal, organization)
    rows = await WebhookEndpointRepository(session).list_for_organization(
        organization.id, principal.scope, params
    )
    return page_of(rows, params, lambda endpoint: (endpoint.created_at, endpoint.id))


async def get_endpoint(
    session: AsyncSession,
    principal: Principal,
    organization: ActiveOrganization,
    endpoint_id: uuid.UUID,
    *,
    lock: bool = False,
) -> WebhookEndpoint:
    """One of the organization's endpoints, for an admin or owner (403); any other id is a 404."""
    ensure_signed_in(principal)
    # Looked up before the role check: another tenant's id is a 404 for any member.
    endpoint = await WebhookEndpointRepository(session).get_in_organization(
        endpoint_id, organization.id, principal.scope, lock=lock
    )
    if endpoint is None:
        raise EndpointNotFound()
    ensure_webhook_manager(principal, organization)
    return endpoint


async def update_endpoint(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    organization: ActiveOrganization,
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    *,
    origin: Origin,
) -> WebhookEndpoint:
    """Change what was given; enabling an endpoint clears why it was disabled."""
    endpoint = await get_endpoint(session, principal, organization, endpoint_id, lock=True)
    changed: list[str] = []
    if body.url is not None and body.url != endpoint.url:
        endpoint.url = _checked_url(settings, body.url)
        changed.append("url")
    if body.event_types is not None:
        types = sorted({event.value for event in body.event_types})
        if types != endpoint.event_types:
            endpoint.event_types = types
            changed.append("event_types")
    if body.description is not None and body.description != endpoint.description:
        endpoint.description = body.description
        changed.append("description")
    if body.enabled is not None and body.enabled != endpoint.enabled:
        endpoint.enabled = body.enabled
        endpoint.disabled_reason = None if body.enabled else "disabled by a member"
        endpoint.failing_since = None
        changed.append("enabled")
    if changed:
        endpoint.updated_at = utcnow()
        await session.flush()
        await _audit(
            session,
            AuditAction.webhook_endpoint_updated,
            principal,
            origin,
            endpoint,
            changed=changed,
            enabled=endpoint.enabled,
        )
        if endpoint.enabled:
            after_commit(session, WEBHOOK_MESSAGES_QUEUED)  # its pending messages go now
    return endpoint


async def delete_endpoint(
    session: AsyncSession,
    principal: Principal,
    organization: ActiveOrganization,
    endpoint_id: uuid.UUID,
    *,
    origin: Origin,
) -> None:
    """Delete the endpoint with its messages and their log; nothing more is sent to it."""
    endpoint = await get_endpoint(session, principal, organization, endpoint_id, lock=True)
    await _audit(session, AuditAction.webhook_endpoint_deleted, principal, origin, endpoint)
    await WebhookEndpointRepository(session).delete(endpoint)


async def rotate_secret(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    organization: ActiveOrganization,
    endpoint_id: uuid.UUID,
    *,
    origin: Origin,
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the current one keeps signing beside it for `ROTATION_OVERLAP`."""
    endpoint = await get_endpoint(session, principal, organization, endpoint_id, lock=True)
    secret = generate_secret()
    now = utcnow()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = secret_sealer(settings).seal(secret)
    endpoint.updated_at = now
    await session.flush()
    await _audit(session, AuditAction.webhook_endpoint_secret_rotated, principal, origin, endpoint)
    return endpoint, secret


async def list_messages(
    session: AsyncSession,
    principal: Principal,
    organization: ActiveOrganization,
    endpoint_id: uuid.UUID,
    params: PageParams,
) -> tuple[list[WebhookMessage], str | None]:
    """The endpoint's messages, newest first."""
    endpoint = await get_endpoint(session, principal, organization, endpoint_id)
    rows = await WebhookMessageRepository(session).list_for_endpoint(endpoint.id, params)
    return page_of(rows, params, lambda message: (message.created_at, message.id))


async def get_message(
    session: AsyncSession,
    principal: Principal,
    organization: ActiveOrganization,
    endpoint_id: uuid.UUID,
    message_id: uuid.UUID,
) -> tuple[WebhookMessage, Sequence[WebhookAttempt]]:
    """A message of the endpoint with every attempt at it."""
    endpoint = await get_endpoint(session, principal, organization, endpoint_id)
    messages = WebhookMessageRepository(session)
    message = await messages.get_of_endpoint(message_id, endpoint.id)
    if message is None:
        raise MessageNotFound()
    return message, await messages.attempts_of(message.id)


async def attempts_by_message(
    session: AsyncSession, messages: Sequence[WebhookMessage]
) -> dict[uuid.UUID, list[WebhookAttempt]]:
    """The attempts at each of `messages` (all of one endpoint already checked), oldest first."""
    found: dict[uuid.UUID, list[WebhookAttempt]] = {message.id: [] for message in messages}
    for attempt in await WebhookMessageRepository(session).attempts_of_many(list(found)):
        found[attempt.message_id].append(attempt)
    return found


async def _admit_send(
    limiter: RateLimiter, settings: Settings, organization: ActiveOrganization
) -> None:
    """Count a message sent by hand against the organization's limit (429 over it): each is
    a POST from the platform to a URL of the tenant's choosing."""
    await limiter.hit(
        settings.webhook_send_limit,
        "webhook-send",
        str(organization.id),
        message="Too many webhook messages sent by hand for this organization.",
    )


async def redeliver(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    principal: Principal,
    organization: ActiveOrganization,
    endpoint_id: uuid.UUID,
    message_id: uuid.UUID,
    *,
    origin: Origin,
) -> WebhookMessage:
    """Send the message again, with its `webhook-id`, on a fresh retry schedule; not while
    it is still waiting to be sent."""
    endpoint = await get_endpoint(session, principal, organization, endpoint_id)
    message = await WebhookMessageRepository(session).get_of_endpoint(
        message_id, endpoint.id, lock=True
    )
    if message is None:
        raise MessageNotFound()
    if message.status == WebhookMessageStatus.pending:
        raise MessagePending()
    await _admit_send(limiter, settings, organization)
    message.status = WebhookMessageStatus.pending
    message.attempts = 0
    message.next_attempt_at = utcnow()
    # Pending again: not delivered until this round's attempt succeeds (which sets it anew).
    message.delivered_at = None
    await session.flush()
    await _audit(
        session,
        AuditAction.webhook_message_redelivered,
        principal,
        origin,
        endpoint,
        message_id=str(message.id),
        event_type=message.event_type,
    )
    after_commit(session, WEBHOOK_MESSAGES_QUEUED)
    return message


async def send_test_event(
    session: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    principal: Principal,
    organization: ActiveOrganization,
    endpoint_id: uuid.UUID,
    *,
    origin: Origin,
) -> WebhookMessage:
    """Queue a `webhook.test` message to the endpoint, whatever event types it takes."""
    endpoint = await get_endpoint(session, principal, organization, endpoint_id)
    if not endpoint.enabled:
        raise EndpointDisabled()
    await _admit_send(limiter, settings, organization)
    now = utcnow()
    message = await WebhookMessageRepository(session).add(
        WebhookMessage(
            organization_id=organization.id,
            endpoint_id=endpoint.id,
            event_type=TEST_EVENT_TYPE,
            event=test_event(endpoint.id, now),
            next_attempt_at=now,
        )
    )
    await _audit(
        session,
        AuditAction.webhook_endpoint_test_sent,
        principal,
        origin,
        endpoint,
        message_id=str(message.id),
    )
    after_commit(session, WEBHOOK_MESSAGES_QUEUED)
    return message
