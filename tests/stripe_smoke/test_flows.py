"""The billing flows the double stands in for, against Stripe's test mode: catalog sync,
checkout, a subscription applied to an organization, the portal, meter events."""

from __future__ import annotations

import contextlib
import uuid

import stripe

from saassy.billing.catalog_sync import Action, sync_catalog
from saassy.billing.checkout import open_portal, start_checkout
from saassy.billing.repository import CustomerRepository
from saassy.billing.subscriptions import sync_subscription
from saassy.context import AppContext
from saassy.models import Organization
from tests.conftest import SignUp


async def test_sync_is_idempotent_against_stripe(ctx: AppContext) -> None:
    assert ctx.stripe_api is not None
    async with ctx.sessionmaker() as session, session.begin():
        await sync_catalog(session, ctx.stripe_api, ctx.settings.catalog)
    async with ctx.sessionmaker() as session, session.begin():
        again = await sync_catalog(session, ctx.stripe_api, ctx.settings.catalog)
    assert {line.action for line in again.lines} <= {Action.unchanged}, again


async def test_checkout_subscription_and_portal(ctx: AppContext, signup: SignUp) -> None:
    client = ctx.stripe_api
    assert client is not None
    account = await signup()
    organization_id = uuid.UUID(account.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        await sync_catalog(session, client, ctx.settings.catalog)
        url = await start_checkout(
            session, ctx.settings, client, organization_id, "Smoke test", "pro", account.email,
            limiter=ctx.limiter, user_id=uuid.UUID(account.user_id),
        )  # fmt: skip
    assert url.startswith("https://checkout.stripe.com/"), url

    # What paying on that page makes, made directly: a subscription on a test card.
    async with ctx.sessionmaker() as session:
        customer = await CustomerRepository(session).of_organization(organization_id)
    assert customer is not None
    customer_id = customer.stripe_customer_id
    payment_method = await client.v1.payment_methods.attach_async(
        "pm_card_visa", {"customer": customer_id}
    )
    await client.v1.customers.update_async(
        customer_id, {"invoice_settings": {"default_payment_method": payment_method.id}}
    )
    prices = await client.v1.prices.list_async({"lookup_keys": ["saassy_pro_month"]})
    subscription = await client.v1.subscriptions.create_async(
        {
            "customer": customer_id,
            "items": [{"price": prices.data[0].id}],
            "metadata": {"organization_id": str(organization_id), "plan": "pro"},
        }
    )
    try:
        async with ctx.sessionmaker() as session, session.begin():
            await sync_subscription(session, ctx.settings, client, subscription.id)
        async with ctx.sessionmaker() as session:
            organization = await session.get(Organization, organization_id)
        assert organization is not None
        assert organization.plan == "pro"

        async with ctx.sessionmaker() as session:
            portal = await open_portal(session, ctx.settings, client, organization_id, ctx.limiter)
        assert portal.startswith("https://billing.stripe.com/"), portal
    finally:
        await client.v1.subscriptions.cancel_async(subscription.id)
        with contextlib.suppress(stripe.StripeError):
            await client.v1.customers.delete_async(customer_id)
