"""Checkout and the customer portal: where a customer subscribes and manages it.

The plan never changes here: only Stripe's webhook (subscriptions.py) changes it, after Stripe
has the payment; the customer's return from checkout proves nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import stripe
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from stripe.params.checkout import SessionCreateParamsLineItem

from saassy.billing.customers import ensure_customer
from saassy.billing.errors import (
    BillingNotSynced,
    NoBillingAccount,
    PlanNotPurchasable,
    StripeObjectMissing,
    StripeUnavailable,
    SubscriptionExists,
    SubscriptionPending,
)
from saassy.billing.keys import metered_price_key, monthly_price_key
from saassy.billing.meters import METERS
from saassy.billing.notices import BILLING_PAGE
from saassy.billing.repository import (
    CatalogObjectRepository,
    CustomerRepository,
    SubscriptionRepository,
)
from saassy.billing.states import HOLDING
from saassy.config import Settings
from saassy.kit.ratelimit import RateLimiter
from saassy.kit.time import next_month_start, utcnow
from saassy.plans.catalog import Catalog, Plan

log = structlog.get_logger(__name__)


def _missing(exc: stripe.StripeError) -> bool:
    """Stripe has no object of an id we stored: a price or customer made with another key."""
    return isinstance(exc, stripe.InvalidRequestError) and (
        exc.code == "resource_missing" or exc.http_status == 404
    )


def _refusal(exc: stripe.StripeError, event: str) -> Exception:
    log.warning(event, error=type(exc).__name__, code=exc.code)
    if _missing(exc):
        param = getattr(exc, "param", None) or ""
        return StripeObjectMissing("customer" if "customer" in param else "price")
    return StripeUnavailable()


def purchasable(plan: Plan) -> bool:
    """Sold through checkout: public, at a fixed monthly price above zero (free, custom and
    hidden plans are not: a hidden plan is one staff assign, whoever guesses its key)."""
    return plan.public and plan.price_usd_month is not None and plan.price_usd_month > 0


def purchasable_plans(catalog: Catalog) -> list[str]:
    return sorted(key for key, plan in catalog.plans.items() if purchasable(plan))


async def admit_stripe_session(
    limiter: RateLimiter,
    settings: Settings,
    organization_id: uuid.UUID,
    user_id: uuid.UUID | None,
) -> None:
    """Count a checkout or portal session against the organization's limit and the user's
    (429 over either).

    Each makes objects and several calls at Stripe, whose rate limit the whole platform shares
    (meter events and every other organization's checkout included): one tenant's flood must
    not spend it for all. Per user too, since a user may make any number of organizations."""
    limit = settings.billing_session_limit
    message = "Too many checkout and billing portal sessions"
    await limiter.hit(
        limit, "billing-session", str(organization_id), message=f"{message} for this organization."
    )
    if user_id is not None:
        await limiter.hit(limit, "billing-session-user", str(user_id), message=f"{message}.")


async def start_checkout(
    session: AsyncSession,
    settings: Settings,
    client: stripe.StripeClient,
    organization_id: uuid.UUID,
    organization_name: str,
    plan_key: str,
    email: str | None,
    *,
    limiter: RateLimiter,
    user_id: uuid.UUID | None,
    now: datetime | None = None,
) -> str:
    """The URL of a Stripe Checkout Session subscribing the organization to `plan_key`."""
    await admit_stripe_session(limiter, settings, organization_id, user_id)
    now = now or utcnow()
    catalog = settings.catalog
    plan = catalog.plans.get(plan_key)
    if plan is None or not purchasable(plan):
        raise PlanNotPurchasable(plan_key, purchasable_plans(catalog))
    subscriptions = SubscriptionRepository(session)
    # Checkouts of one organization one after the other (PostgreSQL; SQLite's transactions
    # already are): each expires the ones still open before it.
    await subscriptions.organization_for_update(organization_id)
    current = await subscriptions.of_organization(organization_id)
    if current is not None and current.status in HOLDING:
        raise SubscriptionExists(current.plan)
    prices = CatalogObjectRepository(session)
    flat = await prices.active_price(monthly_price_key(plan.key))
    if flat is None:
        raise BillingNotSynced(plan.key)
    line_items: list[SessionCreateParamsLineItem] = [{"price": flat.stripe_id, "quantity": 1}]
    for meter in METERS:
        metered = await prices.active_price(metered_price_key(plan.key, meter))
        if metered is not None:  # usage-based: Stripe takes no quantity for it
            line_items.append({"price": metered.stripe_id})
    customer_id = await ensure_customer(
        session, client, organization_id, name=organization_name, email=email
    )
    await _one_subscription_only(client, customer_id)
    metadata = {"organization_id": str(organization_id), "plan": plan.key}
    base = settings.base_url.rstrip("/")
    try:
        checkout = await client.v1.checkout.sessions.create_async(
            {
                "mode": "subscription",
                "customer": customer_id,
                "client_reference_id": str(organization_id),
                "line_items": line_items,
                "metadata": metadata,
                "subscription_data": {
                    "metadata": metadata,
                    # Stripe's periods are our calendar months (UTC), as usage and included
                    # units are: renewals fall on the 1st, and the first invoice charges the
                    # rest of this month prorated (to the second, Stripe's default, explicit).
                    "billing_cycle_anchor": int(next_month_start(now).timestamp()),
                    "proration_behavior": "create_prorations",
                },
                "success_url": f"{base}{BILLING_PAGE}?checkout=success",
                "cancel_url": f"{base}{BILLING_PAGE}?checkout=cancel",
            }
        )
    except stripe.StripeError as exc:
        raise _refusal(exc, "billing.checkout_failed") from exc
    if checkout.url is None:
        raise StripeUnavailable()
    return checkout.url


async def _one_subscription_only(client: stripe.StripeClient, customer_id: str) -> None:
    """Two paid checkouts would be two subscriptions, charged twice: refuse while Stripe has
    one the webhooks have not brought here yet, and expire the checkouts still open. One
    paid meanwhile cannot be expired: it is that subscription on its way."""
    try:
        subscriptions = await client.v1.subscriptions.list_async(
            {"customer": customer_id, "limit": 10}
        )
        if any(subscription.status in HOLDING for subscription in subscriptions.data):
            raise SubscriptionPending()
        listed = await client.v1.checkout.sessions.list_async(
            {"customer": customer_id, "status": "open", "limit": 100}
        )
        earlier = [open_session.id async for open_session in listed.auto_paging_iter()]
        for session_id in earlier:
            await client.v1.checkout.sessions.expire_async(session_id)
    except stripe.InvalidRequestError as exc:
        if _missing(exc):
            raise StripeObjectMissing("customer") from exc
        raise SubscriptionPending() from exc
    except stripe.StripeError as exc:
        raise _refusal(exc, "billing.checkout_failed") from exc


async def open_portal(
    session: AsyncSession,
    settings: Settings,
    client: stripe.StripeClient,
    organization_id: uuid.UUID,
    *,
    limiter: RateLimiter,
    user_id: uuid.UUID | None,
) -> str:
    """The URL of a Stripe Billing Portal session for the organization's customer."""
    customer = await CustomerRepository(session).of_organization(organization_id)
    if customer is None:
        raise NoBillingAccount()
    await admit_stripe_session(limiter, settings, organization_id, user_id)
    base = settings.base_url.rstrip("/")
    try:
        portal = await client.v1.billing_portal.sessions.create_async(
            {"customer": customer.stripe_customer_id, "return_url": f"{base}{BILLING_PAGE}"}
        )
    except stripe.StripeError as exc:
        raise _refusal(exc, "billing.portal_failed") from exc
    return portal.url
