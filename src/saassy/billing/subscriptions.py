"""A subscription, as re-read from Stripe, decides the organization's plan.

Never the event's copy: deliveries come late, twice, and out of order, and the current object
is the same whichever delivery asks for it, so applying it again changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import stripe
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.errors import StripeUnavailable
from saassy.billing.keys import plan_of_price_key
from saassy.billing.notices import notify_payment_failed
from saassy.billing.repository import (
    CatalogObjectRepository,
    CustomerRepository,
    SubscriptionRepository,
)
from saassy.billing.states import HOLDING, PAST_DUE, entitled_plan
from saassy.config import Settings
from saassy.kit.time import utcnow
from saassy.models.billing import BillingSubscription, PlanChangeSource
from saassy.plans.catalog import Catalog
from saassy.plans.changes import change_plan

log = structlog.get_logger(__name__)

StripeDict = dict[str, Any]


def _id_of(value: Any) -> str | None:
    """An id, whether Stripe sent it alone or expanded into its object."""
    if isinstance(value, dict):
        found = value.get("id")
        return found if isinstance(found, str) else None
    return value if isinstance(value, str) else None


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


def _items(subscription: StripeDict) -> list[StripeDict]:
    items = subscription.get("items") or {}
    data = items.get("data") if isinstance(items, dict) else None
    return [item for item in data or [] if isinstance(item, dict)]


async def subscribed_plan(
    session: AsyncSession, catalog: Catalog, subscription: StripeDict
) -> str | None:
    """The catalog plan whose flat Price the subscription holds; None when it holds none.

    Only a Price `saassy billing sync` made counts: metadata is anyone's to write (a
    subscription made in Stripe's dashboard, a price of another product), so it grants
    nothing."""
    prices = CatalogObjectRepository(session)
    for item in _items(subscription):
        # `price` on Stripe; the legacy `plan` (same id) where only that is sent.
        price_id = _id_of(item.get("price")) or _id_of(item.get("plan"))
        quantity = item.get("quantity")
        if price_id is None or (isinstance(quantity, int) and quantity < 1):
            continue  # a quantity of 0 is the plan's price at no charge
        row = await prices.price_by_stripe_id(price_id)
        plan = plan_of_price_key(row.key) if row is not None else None
        if plan in catalog.plans:
            return plan
    return None


async def _organization_of(session: AsyncSession, subscription: StripeDict) -> uuid.UUID | None:
    """The organization whose customer (made by Saassy) the subscription is for."""
    known = await SubscriptionRepository(session).by_stripe_id(subscription["id"])
    if known is not None:
        return known.organization_id
    customer_id = _id_of(subscription.get("customer"))
    customer = await CustomerRepository(session).by_stripe_id(customer_id) if customer_id else None
    return customer.organization_id if customer is not None else None


async def retrieve(kind: str, call: Any, object_id: str) -> StripeDict | None:
    """Stripe's current copy of an object; None when Stripe no longer has it."""
    try:
        found = await call(object_id)
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            log.warning("billing.object_gone", kind=kind, id=object_id)
            return None
        raise StripeUnavailable() from exc
    except stripe.StripeError as exc:
        log.warning("billing.read_failed", kind=kind, error=type(exc).__name__, code=exc.code)
        raise StripeUnavailable() from exc
    data: StripeDict = found.to_dict()
    return data


async def sync_subscription(
    session: AsyncSession,
    settings: Settings,
    client: stripe.StripeClient,
    subscription_id: str,
) -> None:
    """Re-read the subscription from Stripe and apply its current state."""
    subscription = await retrieve(
        "subscription", client.v1.subscriptions.retrieve_async, subscription_id
    )
    if subscription is None:
        if await SubscriptionRepository(session).by_stripe_id(subscription_id) is None:
            return
        # Stripe no longer has the subscription an organization holds: it ended, and
        # keeping its plan would grant it for nothing (the event is not delivered again).
        subscription = {"id": subscription_id, "status": "canceled"}
    await apply_subscription(session, settings, subscription)


async def apply_subscription(
    session: AsyncSession,
    settings: Settings,
    subscription: StripeDict,
    *,
    now: datetime | None = None,
) -> None:
    """Record the subscription and put its organization on the plan its state entitles."""
    now = now or utcnow()
    catalog = settings.catalog
    subscriptions = SubscriptionRepository(session)
    organization_id = await _organization_of(session, subscription)
    if organization_id is None:
        log.warning("billing.subscription_without_organization", subscription=subscription["id"])
        return
    organization = await subscriptions.organization_for_update(organization_id)
    if organization is None:
        return
    row = await subscriptions.of_organization(organization_id)
    status = str(subscription.get("status"))
    other = row is not None and row.stripe_subscription_id != subscription["id"]
    plan = await subscribed_plan(session, catalog, subscription)
    # An earlier subscription's end, delivered after the organization took a new one; or a
    # second subscription to no plan of the catalog, which must not unseat the paid one.
    holds_another = other and row is not None and row.status in HOLDING
    if holds_another and (status not in HOLDING or plan is None):
        log.info("billing.stale_subscription", subscription=subscription["id"])
        return
    if plan is None:
        # Not a price of the catalog: the default plan, whatever its status or metadata say.
        plan = catalog.default_plan
        log.warning("billing.subscription_plan_unknown", subscription=subscription["id"])
    same = row is not None and row.stripe_subscription_id == subscription["id"]
    first_past_due = status == PAST_DUE and not (same and row and row.past_due_since)
    if row is None:
        row = BillingSubscription(organization_id=organization_id)
        session.add(row)
    past_due_since = (now if first_past_due else row.past_due_since) if status == PAST_DUE else None
    items = _items(subscription)
    period = items[0] if items else {}
    row.stripe_subscription_id = subscription["id"]
    row.status = status
    row.plan = plan
    row.current_period_start = _timestamp(
        subscription.get("current_period_start") or period.get("current_period_start")
    )
    row.current_period_end = _timestamp(
        subscription.get("current_period_end") or period.get("current_period_end")
    )
    row.cancel_at_period_end = bool(subscription.get("cancel_at_period_end"))
    row.past_due_since = past_due_since
    row.synced_at = now
    await session.flush()
    target = entitled_plan(
        status,
        plan,
        past_due_since,
        default_plan=catalog.default_plan,
        grace_days=settings.billing_grace_days,
        now=now,
    )
    await change_plan(
        session,
        organization,
        target,
        source=PlanChangeSource.stripe,
        reference=subscription["id"],
        now=now,
    )
    if first_past_due:
        await notify_payment_failed(session, settings, organization, plan)
