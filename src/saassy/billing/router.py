"""`/api/v1/billing`: the organization's billing state, checkout, the portal, and Stripe's
webhooks. Without SAASSY_STRIPE_SECRET_KEY every call but the state answers 409
`billing_disabled`."""

from __future__ import annotations

from typing import Annotated

import stripe
from fastapi import APIRouter, Depends, Header, Request

from saassy.auth.dependencies import CurrentOrganization, CurrentPrincipal
from saassy.auth.principal import ActiveOrganization, Principal
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.billing.account import billing_state as billing_state_of
from saassy.billing.checkout import open_portal, start_checkout
from saassy.billing.errors import BillingDisabled
from saassy.billing.schemas import (
    BillingState,
    CheckoutRequest,
    RedirectUrl,
    WebhookReceipt,
)
from saassy.billing.webhooks import receive_event, verified_event
from saassy.config.billing import webhook_secrets
from saassy.context import AppContext
from saassy.deps import Context, Session
from saassy.kit.errors import Forbidden, NotFound
from saassy.models import Organization, Role, User

router = APIRouter(prefix="/billing", tags=["billing"], dependencies=[READ_OR_ADMIN])


def _client(ctx: AppContext) -> stripe.StripeClient:
    if ctx.stripe_api is None:
        raise BillingDisabled()
    return ctx.stripe_api


async def _billing_manager(
    principal: CurrentPrincipal, organization: CurrentOrganization
) -> ActiveOrganization:
    """A signed-in owner or admin: an API key (a member's powers) never starts a payment."""
    if principal.api_key_id is not None:
        raise Forbidden(
            "API keys cannot start checkout or open the billing portal: sign in to the "
            "dashboard as an owner or admin.",
            code="role_required",
        )
    if organization.role.rank < Role.admin.rank:
        raise Forbidden("This needs the admin role or higher.", code="role_required")
    return organization


BillingManager = Annotated[ActiveOrganization, Depends(_billing_manager)]


@router.get("")
async def billing_state(
    ctx: Context, session: Session, organization: CurrentOrganization
) -> BillingState:
    """The organization's plan and subscription, and whether a payment failed (any member)."""
    enabled = ctx.stripe_api is not None
    return await billing_state_of(session, ctx.settings, organization.id, enabled)


async def _who(
    session: Session, principal: Principal, organization_id: object
) -> tuple[str, str | None]:
    organization = await session.get(Organization, organization_id)
    if organization is None or organization.deleted_at is not None:
        raise NotFound("Organization")
    user = await session.get(User, principal.user_id) if principal.user_id else None
    return organization.name, user.email if user is not None else None


@router.post("/checkout")
async def checkout(
    body: CheckoutRequest,
    ctx: Context,
    session: Session,
    principal: CurrentPrincipal,
    organization: BillingManager,
) -> RedirectUrl:
    """A Stripe Checkout page subscribing the organization to a paid plan (owner or admin).

    The plan changes when Stripe's webhook says the subscription is active, not on return."""
    client = _client(ctx)
    name, email = await _who(session, principal, organization.id)
    url = await start_checkout(
        session, ctx.settings, client, organization.id, name, body.plan, email,
        limiter=ctx.limiter, user_id=principal.user_id,
    )  # fmt: skip
    return RedirectUrl(url=url)


@router.post("/portal")
async def portal(
    ctx: Context, session: Session, principal: CurrentPrincipal, organization: BillingManager
) -> RedirectUrl:
    """Stripe's customer portal: card, invoices, plan changes, cancelation (owner or admin)."""
    client = _client(ctx)
    url = await open_portal(
        session, ctx.settings, client, organization.id,
        limiter=ctx.limiter, user_id=principal.user_id,
    )  # fmt: skip
    return RedirectUrl(url=url)


@router.post("/webhooks/stripe")
async def stripe_webhook(
    request: Request,
    ctx: Context,
    session: Session,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookReceipt:
    """Stripe's events, signed with the endpoint's secret; no user, no CSRF, no rate limit."""
    client = _client(ctx)
    secret = ctx.settings.stripe_webhook_secret
    assert secret is not None  # the settings refuse a secret key without it
    event = verified_event(await request.body(), stripe_signature, webhook_secrets(secret))
    processed = await receive_event(session, ctx.settings, client, event)
    return WebhookReceipt(duplicate=not processed)
