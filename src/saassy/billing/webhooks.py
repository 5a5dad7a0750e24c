"""Stripe's webhook events: verified, processed once, and applied from Stripe's current state.

The event row is inserted first, in the transaction of its effects: a second delivery of the
same id (a replay, or a concurrent twin that waits on the unique index) finds it and changes
nothing, and a failure rolls the row back with the effects, so Stripe's retry tries again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import stripe
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.errors import InvalidSignature
from saassy.billing.subscriptions import StripeDict, retrieve, sync_subscription
from saassy.config import Settings
from saassy.kit.time import utcnow
from saassy.models.billing import StripeEvent

log = structlog.get_logger(__name__)

SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
# invoice.payment_succeeded: the older name of invoice.paid (Stripe sends both; localstripe it).
INVOICE_EVENTS = frozenset(
    {"invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed", "invoice.finalized"}
)
CHECKOUT_COMPLETED = "checkout.session.completed"
METER_ERROR = "v1.billing.meter.error_report_triggered"
HANDLED = SUBSCRIPTION_EVENTS | INVOICE_EVENTS | {CHECKOUT_COMPLETED, METER_ERROR}


def verified_event(payload: bytes, signature: str | None, secrets: Sequence[str]) -> StripeDict:
    """The event, once the SDK has checked Stripe's signature with one of the destinations'
    secrets (default tolerance, 5 min)."""
    try:
        text = payload.decode("utf-8")
        if not any(_signed_with(text, signature or "", secret) for secret in secrets):
            raise InvalidSignature()
        event = json.loads(payload)
    except ValueError:
        raise InvalidSignature() from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str):
        raise InvalidSignature()
    return event


def _signed_with(payload: str, signature: str, secret: str) -> bool:
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE
        )
    except stripe.SignatureVerificationError:
        return False
    return True


async def receive_event(
    session: AsyncSession, settings: Settings, client: stripe.StripeClient, event: StripeDict
) -> bool:
    """Process the event once; False when its id was processed already."""
    event_type = str(event.get("type"))
    try:
        async with session.begin_nested():
            session.add(
                StripeEvent(stripe_event_id=event["id"], type=event_type, processed_at=utcnow())
            )
    except IntegrityError:
        log.info("billing.event_replayed", event_id=event["id"], type=event_type)
        return False
    if event_type in HANDLED:
        await apply_event(session, settings, client, event_type, event)
        log.info("billing.event_processed", event_id=event["id"], type=event_type)
    return True


def _object_of(event: StripeDict) -> StripeDict:
    data = event.get("data")
    found = data.get("object") if isinstance(data, dict) else None
    return found if isinstance(found, dict) else {}


async def apply_event(
    session: AsyncSession,
    settings: Settings,
    client: stripe.StripeClient,
    event_type: str,
    event: StripeDict,
) -> None:
    subject = _object_of(event)
    subject_id = subject.get("id")
    if event_type == METER_ERROR:
        # A thin event: Stripe says which meter; the reasons are read in its dashboard.
        related = event.get("related_object") or {}
        log.error(
            "billing.meter_error_reported",
            event_id=event["id"],
            meter=related.get("id") if isinstance(related, dict) else None,
        )
        return
    if not isinstance(subject_id, str):
        return
    if event_type in SUBSCRIPTION_EVENTS:
        await sync_subscription(session, settings, client, subject_id)
    elif event_type == CHECKOUT_COMPLETED:
        checkout = await retrieve(
            "checkout session", client.v1.checkout.sessions.retrieve_async, subject_id
        )
        subscription_id = _subscription_id(checkout)
        # Never the session's client_reference_id or metadata: a session Saassy did not make
        # (a Payment Link's buyer sets it) could name any organization. Saassy's sessions are
        # for the organization's own customer, which names it.
        if checkout is not None and subscription_id is not None:
            await sync_subscription(session, settings, client, subscription_id)
    elif event_type in INVOICE_EVENTS:
        invoice = await retrieve("invoice", client.v1.invoices.retrieve_async, subject_id)
        subscription_id = _subscription_id(invoice)
        if subscription_id is not None:
            await sync_subscription(session, settings, client, subscription_id)


def _subscription_id(source: StripeDict | None) -> str | None:
    """A checkout session's or an invoice's subscription (the latter moved under `parent`)."""
    if source is None:
        return None
    value: Any = source.get("subscription")
    if value is None:
        parent = source.get("parent") or {}
        details = parent.get("subscription_details") if isinstance(parent, dict) else None
        value = details.get("subscription") if isinstance(details, dict) else None
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else None
