"""Billing as a hostile tenant and a hostile internet would try it: webhooks not from Stripe,
event copies naming another organization, subscriptions to prices outside the catalog, plans
that are not for sale, and the grace sweep racing a payment."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from saassy.admin.service import set_plan
from saassy.billing.grace import end_expired_grace
from saassy.billing.keys import monthly_price_key
from saassy.billing.notices import notify_payment_failed
from saassy.billing.repository import CatalogObjectRepository, SubscriptionRepository
from saassy.billing.subscriptions import apply_subscription
from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import Membership, Organization, Role, User
from saassy.models.billing import BillingCustomer, BillingSubscription, StripeEvent
from tests.billing.billing_app import (
    CATALOG,
    StripeEvents,
    deliver,
    session_id_of,
    signed,
    stripe_events,
    synced,  # noqa: F401 - a fixture
    webhook_secret,
    write_catalog,
)
from tests.billing.stripe_services import API_KEY, StripeServices
from tests.billing.test_past_due import GOOD_CARD, use_card
from tests.billing.test_subscriptions import billing, count, plan_changes, subscribe
from tests.billing.webhook_receiver import Delivery
from tests.conftest import Account, SignUp, on_postgresql
from tests.email.mail import outbox

# A plan staff assign to partners: priced, but not on the pricing page.
HIDDEN_PLAN = """
[plans.partner]
name = "Partner"
price_usd_month = 5
tasks_per_month = 100000
api_rate_limit = "1000/minute"
public = false
"""


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, stripe_services: StripeServices
) -> Settings:
    return settings_factory(
        config=write_catalog(tmp_path, CATALOG + HIDDEN_PLAN),
        stripe_secret_key=API_KEY,
        stripe_webhook_secret=f"whsec_{uuid.uuid4().hex}",
        stripe_api_base=stripe_services.api_base,
    )


def event_of(event_type: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": event_type,
            "data": {"object": subject}}  # fmt: skip


async def customer_of(client: httpx.AsyncClient, stripe: StripeServices, owner: Account) -> str:
    """The organization's Stripe customer, made by starting (not paying) a checkout."""
    response = await client.post(
        "/api/v1/billing/checkout", json={"plan": "pro"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    checkout = stripe.client().v1.checkout.sessions.retrieve(session_id_of(response.json()["url"]))
    return str(checkout.customer)


def foreign_price(stripe: StripeServices) -> str:
    """A monthly price of a product `saassy billing sync` never made."""
    client = stripe.client()
    product = client.v1.products.create({"name": "Someone else's product"})
    price = client.v1.prices.create(
        {"product": product.id, "currency": "usd", "unit_amount": 100,
         "recurring": {"interval": "month"}}
    )  # fmt: skip
    return price.id


def subscribe_in_stripe(
    stripe: StripeServices, customer: str, price: str, metadata: dict[str, str]
) -> str:
    """A subscription made in Stripe itself (its dashboard, the API), not through checkout."""
    use_card(stripe, customer, GOOD_CARD)
    form = {"customer": customer, "items[0][plan]": price}
    form |= {f"metadata[{key}]": value for key, value in metadata.items()}
    response = stripe.http.post(
        f"{stripe.api_base}/v1/subscriptions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        data=form,
    )
    response.raise_for_status()
    assert response.json()["status"] == "active"
    subscription_id: str = response.json()["id"]
    return subscription_id


async def test_webhook_bodies_not_from_stripe_change_nothing_and_tell_nothing(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    secret = webhook_secret(ctx.settings)
    event = event_of("customer.subscription.created", {"id": "sub_x", "status": "active"})
    good = signed(event, secret)
    timestamp = good.signature.split(",")[0] if good.signature else ""
    attempts = [
        Delivery("t=abc,v1=zz", good.payload),
        Delivery(f"{timestamp},v1=", good.payload),
        Delivery(f"{timestamp},v0={'0' * 64}", good.payload),
        Delivery(good.signature, good.payload + b" "),
        Delivery(good.signature.upper() if good.signature else None, good.payload),
        Delivery(f"{good.signature},v1={'0' * 64}".replace("v1=", "v0=", 1), good.payload),
    ]
    for i, delivery in enumerate(attempts):
        response = await deliver(client, delivery)
        assert response.status_code == 400, (i, response.text)
        assert response.json()["error"]["code"] == "invalid_signature"
        assert secret not in response.text
        assert "v1=" not in response.text
    # Signed (Stripe would not send them, but a signature is no licence to crash): bodies
    # that are not an event.
    for body in (b"not json", b"\xff\xfe", b"[1, 2]", b'{"type": "x"}', b'"evt_1"', b"{}"):
        delivery = signed_bytes(body, secret)
        response = await deliver(client, delivery)
        assert response.status_code == 400, (body, response.text)
    huge = b'{"id": "evt_huge", "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = await deliver(client, signed_bytes(huge, secret))
    assert response.status_code == 413, response.text[:200]
    assert await count(ctx, StripeEvent) == 0
    assert (await billing(client, owner))["plan"] == "free"


def signed_bytes(payload: bytes, secret: str) -> Delivery:
    """Any bytes, signed as Stripe signs an event."""
    timestamp = int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return Delivery(f"t={timestamp},v1={digest.hexdigest()}", payload)


@pytest.mark.usefixtures("synced")
async def test_checkout_only_for_an_organization_one_administers(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp
) -> None:
    tenant, victim = await signup(), await signup()
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            Membership(
                organization_id=uuid.UUID(victim.organization_id),
                user_id=uuid.UUID(tenant.user_id),
                role=Role.member,
            )
        )
    created = await client.post("/api/v1/api-keys", json={"name": "ci"}, headers=tenant.headers)
    assert created.status_code == 201, created.text
    key = {"Authorization": f"Bearer {created.json()['key']}"}
    outsider = await signup()
    for headers, expected in (
        ({**tenant.headers, "Saassy-Organization": victim.organization_id}, 403),  # member
        ({**key, "Saassy-Organization": victim.organization_id}, 404),  # A's key names B
        ({**outsider.headers, "Saassy-Organization": victim.organization_id}, 404),
    ):
        for path, body in (("checkout", {"plan": "pro"}), ("portal", None)):
            response = await client.post(f"/api/v1/billing/{path}", json=body, headers=headers)
            assert response.status_code in (expected, 403, 404), response.text
            assert response.status_code != 200
    async with ctx.sessionmaker() as session:
        customers = (await session.scalars(select(BillingCustomer))).all()
    assert customers == []  # not even a Stripe customer was made for the victim


@pytest.mark.usefixtures("synced")
async def test_plans_not_for_sale_are_refused_at_checkout(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    fullwidth = "\uff50\uff52\uff4f"
    odd = ["PRO", "Pro", " pro", "pro ", fullwidth, "pro\u200b", "pro\x00", "free", "enterprise",
           "partner", "plan:pro", "price:pro:month", "../pro", "x" * 41, ""]  # fmt: skip
    for plan in odd:
        response = await client.post(
            "/api/v1/billing/checkout", json={"plan": plan}, headers=owner.headers
        )
        assert response.status_code == 422, (plan, response.text)
        assert response.json()["error"]["field"] in ("plan", "body.plan"), response.text
        details = response.json()["error"].get("details") or {}
        assert "partner" not in details.get("purchasable", [])  # nor is a hidden plan listed


@pytest.mark.usefixtures("synced")
async def test_a_subscription_to_a_price_outside_the_catalog_grants_nothing(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    victim, tenant = await signup(), await signup()
    customer = await customer_of(client, stripe_services, tenant)
    price = await asyncio.to_thread(foreign_price, stripe_services)
    metadata = {"plan": "enterprise", "organization_id": victim.organization_id}
    subscription = await asyncio.to_thread(
        subscribe_in_stripe, stripe_services, customer, price, metadata
    )
    secret = webhook_secret(ctx.settings)
    for event_type in ("customer.subscription.created", "customer.subscription.updated"):
        copy = {"id": subscription, "customer": customer, "status": "active",
                "metadata": metadata}  # fmt: skip
        response = await deliver(client, signed(event_of(event_type, copy), secret))
        assert response.status_code == 200, response.text
    assert (await billing(client, tenant))["plan"] == "free"
    assert (await billing(client, victim))["plan"] == "free"
    assert await plan_changes(ctx, tenant.organization_id) == []
    assert await plan_changes(ctx, victim.organization_id) == []


@pytest.mark.usefixtures("synced")
async def test_a_second_subscription_outside_the_catalog_leaves_the_paid_one(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()
    with stripe_events(stripe_services, ctx.settings) as events:
        completed, _ = await subscribe(client, stripe_services, events, owner)
        assert (await deliver(client, completed)).status_code == 200
    customer = str(json.loads(completed.payload)["data"]["object"]["customer"])
    price = await asyncio.to_thread(foreign_price, stripe_services)
    other = await asyncio.to_thread(
        subscribe_in_stripe, stripe_services, customer, price, {"plan": "enterprise"}
    )
    event = event_of("customer.subscription.created", {"id": other, "customer": customer})
    assert (await deliver(client, signed(event, webhook_secret(ctx.settings)))).status_code == 200
    state = await billing(client, owner)
    assert (state["plan"], state["subscription"]["plan"]) == ("pro", "pro")
    assert await plan_changes(ctx, owner.organization_id) == [("free", "pro", "stripe")]


@pytest.mark.usefixtures("synced")
async def test_an_event_copy_naming_another_organization_moves_only_the_payer(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    payer, victim = await signup(), await signup()
    victims_customer = await customer_of(client, stripe_services, victim)
    with stripe_events(stripe_services, ctx.settings) as events:
        completed, created = await subscribe(client, stripe_services, events, payer)
    secret = webhook_secret(ctx.settings)
    # Copies rewritten to point at the victim (the app must re-read them from Stripe).
    checkout = StripeEvents.event_object(completed)
    lying_checkout = {
        **checkout,
        "client_reference_id": victim.organization_id,
        "customer": victims_customer,
        "metadata": {"organization_id": victim.organization_id, "plan": "pro"},
    }
    subscription = StripeEvents.event_object(created)
    lying_subscription = {**subscription, "customer": victims_customer,
                          "metadata": {"organization_id": victim.organization_id}}  # fmt: skip
    for delivery in (
        signed(event_of("customer.subscription.created", lying_subscription), secret),
        signed(event_of("checkout.session.completed", lying_checkout), secret),
    ):
        assert (await deliver(client, delivery)).status_code == 200
    assert (await billing(client, payer))["plan"] == "pro"
    assert (await billing(client, victim))["plan"] == "free"
    assert (await billing(client, victim))["subscription"] is None


@pytest.mark.usefixtures("synced")
async def test_five_deliveries_of_one_event_at_once_have_one_effect(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()
    with stripe_events(stripe_services, ctx.settings) as events:
        completed, _ = await subscribe(client, stripe_services, events, owner)
    answers = await asyncio.gather(*(deliver(client, completed) for _ in range(5)))
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 4
    assert await plan_changes(ctx, owner.organization_id) == [("free", "pro", "stripe")]


@pytest.mark.usefixtures("synced")
async def test_canceled_then_subscribed_again_ignores_the_old_end(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()
    secret = webhook_secret(ctx.settings)
    with stripe_events(stripe_services, ctx.settings) as events:
        completed, created = await subscribe(client, stripe_services, events, owner)
        assert (await deliver(client, completed)).status_code == 200
        first = StripeEvents.event_object(created)["id"]
        stripe_services.client().v1.subscriptions.cancel(first)
        ended = signed(event_of("customer.subscription.deleted", {"id": first}), secret)
        assert (await deliver(client, ended)).status_code == 200
        assert (await billing(client, owner))["plan"] == "free"
        events.seen.clear()
        again, _ = await subscribe(client, stripe_services, events, owner)
        assert (await deliver(client, again)).status_code == 200
    late = signed(event_of("customer.subscription.deleted", {"id": first}), secret)
    assert (await deliver(client, late)).status_code == 200
    state = await billing(client, owner)
    assert (state["plan"], state["subscription"]["status"]) == ("pro", "active")
    assert await plan_changes(ctx, owner.organization_id) == [
        ("free", "pro", "stripe"),
        ("pro", "free", "stripe"),
        ("free", "pro", "stripe"),
    ]


@pytest.mark.usefixtures("synced")
@pytest.mark.skipif(not on_postgresql(), reason="SQLite's BEGIN IMMEDIATE serializes the two")
async def test_the_grace_sweep_leaves_an_organization_that_paid_meanwhile(
    ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    organization_id = uuid.UUID(owner.organization_id)
    long_ago = utcnow().replace(year=2020)
    async with ctx.sessionmaker() as session, session.begin():
        price = await CatalogObjectRepository(session).active_price(monthly_price_key("pro"))
        assert price is not None
        session.add(
            BillingSubscription(
                organization_id=organization_id,
                stripe_subscription_id="sub_racing",
                status="past_due",
                plan="pro",
                past_due_since=long_ago,
                cancel_at_period_end=False,
                synced_at=long_ago,
            )
        )
        organization = await session.get(Organization, organization_id)
        assert organization is not None
        organization.plan = "pro"
    paid = {"id": "sub_racing", "status": "active", "customer": "cus_racing",
            "items": {"data": [{"price": {"id": price.stripe_id}}]}}  # fmt: skip

    async def sweep() -> int:
        async with ctx.sessionmaker() as session, session.begin():
            return await end_expired_grace(session, ctx.settings, utcnow())

    # The payment's webhook holds the organization while the sweep, which has read the
    # subscription as past due, waits for it; then the payment commits.
    async with ctx.sessionmaker() as payment, payment.begin():
        await SubscriptionRepository(payment).organization_for_update(organization_id)
        sweeping = asyncio.create_task(sweep())
        await asyncio.sleep(1.0)
        assert not sweeping.done()
        await apply_subscription(payment, ctx.settings, paid)
    assert await sweeping == 0
    async with ctx.sessionmaker() as session:
        organization = await session.get(Organization, organization_id)
        assert organization is not None
        assert organization.plan == "pro"
        row = await SubscriptionRepository(session).of_organization(organization_id)
        assert row is not None
        assert row.status == "active"


@pytest.mark.usefixtures("synced")
async def test_a_subscription_stripe_no_longer_has_ends_the_plan(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    organization_id = uuid.UUID(owner.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            BillingSubscription(
                organization_id=organization_id,
                stripe_subscription_id="sub_deleted_in_stripe",
                status="active",
                plan="pro",
                cancel_at_period_end=False,
                synced_at=utcnow(),
            )
        )
        organization = await session.get(Organization, organization_id)
        assert organization is not None
        organization.plan = "pro"
    secret = webhook_secret(ctx.settings)
    copy = {"id": "sub_deleted_in_stripe", "status": "canceled"}
    ended = signed(event_of("customer.subscription.deleted", copy), secret)
    assert (await deliver(client, ended)).status_code == 200
    state = await billing(client, owner)
    assert (state["plan"], state["subscription"]["status"]) == ("free", "canceled")
    # One nobody holds changes nothing and makes no row.
    stranger = signed(event_of("customer.subscription.deleted", {"id": "sub_nobodys"}), secret)
    assert (await deliver(client, stranger)).status_code == 200
    assert await count(ctx, BillingSubscription) == 1


@pytest.mark.usefixtures("synced")
@pytest.mark.skipif(not on_postgresql(), reason="SQLite's BEGIN IMMEDIATE serializes the two")
async def test_a_staff_plan_change_racing_a_webhook_keeps_the_audit_chain(
    ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    organization_id = uuid.UUID(owner.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        price = await CatalogObjectRepository(session).active_price(monthly_price_key("pro"))
        assert price is not None
        session.add(BillingCustomer(organization_id=organization_id, stripe_customer_id="cus_r"))
    paid = {"id": "sub_staff_race", "status": "active", "customer": "cus_r",
            "items": {"data": [{"price": {"id": price.stripe_id}}]}}  # fmt: skip

    async def staff_sets_enterprise() -> None:
        async with ctx.sessionmaker() as session, session.begin():
            await set_plan(session, ctx.settings.catalog, organization_id, "enterprise")

    # The webhook holds the organization while staff read it and wait to write.
    async with ctx.sessionmaker() as webhook, webhook.begin():
        await SubscriptionRepository(webhook).organization_for_update(organization_id)
        staff = asyncio.create_task(staff_sets_enterprise())
        await asyncio.sleep(1.0)
        assert not staff.done()
        await apply_subscription(webhook, ctx.settings, paid)
    await staff
    # Each change starts from the plan the one before left (not two from "free").
    assert sorted(await plan_changes(ctx, owner.organization_id)) == [
        ("free", "pro", "stripe"),
        ("pro", "enterprise", "staff"),
    ]


async def test_the_past_due_mail_goes_to_active_owners_and_admins_only(
    ctx: AppContext, signup: SignUp
) -> None:
    owner, admin, member, disabled, outsider = [await signup() for _ in range(5)]
    organization_id = uuid.UUID(owner.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        for account, role in ((admin, Role.admin), (member, Role.member), (disabled, Role.admin)):
            session.add(
                Membership(
                    organization_id=organization_id,
                    user_id=uuid.UUID(account.user_id),
                    role=role,
                )
            )
        user = await session.get(User, uuid.UUID(disabled.user_id))
        assert user is not None
        user.disabled_at = utcnow()
        organization = await session.get(Organization, organization_id)
        assert organization is not None
        await session.flush()
        await notify_payment_failed(session, ctx.settings, organization, "pro")
    mails = [m for m in await outbox(ctx) if "payment failed" in m.subject]
    assert sorted(m.to for m in mails) == sorted([owner.email.lower(), admin.email.lower()])
    assert outsider.email.lower() not in {m.to for m in mails}


@pytest.mark.usefixtures("synced")
async def test_a_catalog_price_at_quantity_zero_grants_nothing(
    ctx: AppContext, signup: SignUp
) -> None:
    # Stripe takes a quantity of 0 (a portal that lets customers change quantities, say):
    # the plan's price at no charge. localstripe refuses it, so the subscription Stripe
    # would answer is applied as the webhook applies it.
    owner = await signup()
    organization_id = uuid.UUID(owner.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        price = await CatalogObjectRepository(session).active_price(monthly_price_key("pro"))
        assert price is not None
        session.add(BillingCustomer(organization_id=organization_id, stripe_customer_id="cus_0"))
        item = {"price": {"id": price.stripe_id}, "quantity": 0}
        free_ride = {"id": "sub_zero", "status": "active", "customer": "cus_0",
                     "items": {"data": [item]}}  # fmt: skip
        await apply_subscription(session, ctx.settings, free_ride)
    async with ctx.sessionmaker() as session:
        organization = await session.get(Organization, organization_id)
        assert organization is not None
        assert organization.plan == "free"


@pytest.mark.usefixtures("synced")
async def test_a_checkout_saassy_did_not_make_cannot_name_an_organization(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    # A Payment Link (or pricing table) the operator made in Stripe for the pro price: its
    # buyer sets client_reference_id in the link's URL, and Stripe makes a new customer.
    victim = await signup()
    stripe = stripe_services.client()
    customer = stripe.v1.customers.create({"email": "attacker@example.com"}).id
    async with ctx.sessionmaker() as session:
        price = await CatalogObjectRepository(session).active_price(monthly_price_key("pro"))
        assert price is not None
    checkout = stripe.v1.checkout.sessions.create(
        {"mode": "subscription", "customer": customer,
         "client_reference_id": victim.organization_id,
         "metadata": {"organization_id": victim.organization_id},
         "line_items": [{"price": price.stripe_id, "quantity": 1}],
         "success_url": "https://attacker.example/done"}
    )  # fmt: skip
    with stripe_events(stripe_services, ctx.settings) as events:
        await asyncio.to_thread(stripe_services.pay_checkout, checkout.id)
        completed, created = await events.wait_for(
            "checkout.session.completed", "customer.subscription.created", customer=customer
        )
    for delivery in (completed, created):
        assert (await deliver(client, delivery)).status_code == 200
    state = await billing(client, victim)
    assert (state["plan"], state["subscription"]) == ("free", None)
    assert await count(ctx, BillingSubscription) == 0


async def test_the_grace_sweep_leaves_a_plan_staff_assigned_since(
    ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    organization_id = uuid.UUID(owner.organization_id)
    long_ago = utcnow().replace(year=2020)
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            BillingSubscription(
                organization_id=organization_id,
                stripe_subscription_id="sub_lapsed",
                status="past_due",
                plan="pro",
                past_due_since=long_ago,
                cancel_at_period_end=False,
                synced_at=long_ago,
            )
        )
        await session.flush()
        await set_plan(session, ctx.settings.catalog, organization_id, "enterprise")
    for _ in range(2):  # the sweep runs every 10 minutes
        async with ctx.sessionmaker() as session, session.begin():
            assert await end_expired_grace(session, ctx.settings, utcnow()) == 0
    assert await plan_changes(ctx, owner.organization_id) == [("free", "enterprise", "staff")]
