"""One Stripe Customer per organization, made the first time one is needed.

Two requests may need it at once (two checkouts): both ask Stripe with the same idempotency
key, derived from the organization id, so Stripe makes one customer and answers both with it;
the unique row then keeps one, and the request that loses the insert reads the winner's.
"""

from __future__ import annotations

import asyncio
import uuid

import stripe
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from stripe.params import CustomerCreateParams

from saassy.billing.errors import StripeUnavailable
from saassy.billing.repository import CustomerRepository
from saassy.models.billing import BillingCustomer

log = structlog.get_logger(__name__)

IN_FLIGHT_ATTEMPTS = 5
IN_FLIGHT_WAIT_S = 0.2


def customer_idempotency_key(organization_id: uuid.UUID) -> str:
    return f"saassy-customer-{organization_id}"


async def ensure_customer(
    session: AsyncSession,
    client: stripe.StripeClient,
    organization_id: uuid.UUID,
    *,
    name: str,
    email: str | None,
) -> str:
    """The organization's Stripe customer id, creating the customer on first need."""
    customers = CustomerRepository(session)
    found = await customers.of_organization(organization_id)
    if found is not None:
        return found.stripe_customer_id
    params: CustomerCreateParams = {
        "name": name,
        "metadata": {"organization_id": str(organization_id)},
    }
    if email:
        params["email"] = email
    customer = await _create(client, organization_id, params)
    try:
        async with session.begin_nested():
            session.add(
                BillingCustomer(organization_id=organization_id, stripe_customer_id=customer.id)
            )
    except IntegrityError:
        winner = await customers.of_organization(organization_id)
        if winner is None:
            raise
        return winner.stripe_customer_id
    return customer.id


async def _create(
    client: stripe.StripeClient, organization_id: uuid.UUID, params: CustomerCreateParams
) -> stripe.Customer:
    """Stripe answers 409 while the twin request with the same key is still running (the SDK
    raises that as a plain APIError): wait for it to finish, then the same key answers with
    the customer it made."""
    key = customer_idempotency_key(organization_id)
    for attempt in range(1, IN_FLIGHT_ATTEMPTS + 1):
        try:
            return await client.v1.customers.create_async(params, {"idempotency_key": key})
        except stripe.StripeError as exc:
            if exc.http_status == 409 and attempt < IN_FLIGHT_ATTEMPTS:
                await asyncio.sleep(IN_FLIGHT_WAIT_S * attempt)
                continue
            log.warning("billing.customer_failed", error=type(exc).__name__, code=exc.code)
            raise StripeUnavailable() from exc
    raise AssertionError("unreachable")
