"""Checkout, Stripe's webhooks and the plan they decide: verified, once per event, from
Stripe's current state whatever order the deliveries come in."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from saassy.config import Settings
from saassy.context import AppContext
from saassy.models import Membership, Organization, Role
from saassy.models.billing import BillingCustomer, PlanChange, StripeEvent
from tests.billing.billing_app import (
    StripeEvents,
    billing_settings,
    deliver,
    session_id_of,
    signed,
    stripe_events,
    synced,  # noqa: F401 - a fixture
    webhook_secret,
)
from tests.billing.stripe_services import StripeServices
from tests.billing.webhook_receiver import Delivery
from tests.conftest import Account, SignUp
from tests.organizations.support import bearer, create_api_key
from tests.web.test_staff import staff  # noqa: F401 - a fixture


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, stripe_services: StripeServices
) -> Settings:
    return billing_settings(settings_factory, tmp_path, stripe_services)


async def billing(client: httpx.AsyncClient, account: Account) -> dict[str, Any]:
    response = await client.get("/api/v1/billing", headers=account.headers)
    assert response.status_code == 200, response.text
    state: dict[str, Any] = response.json()
    return state


async def plan_changes(ctx: AppContext, organization_id: str) -> list[tuple[str, str, str]]:
    async with ctx.sessionmaker() as session:
        rows = await session.scalars(
            select(PlanChange)
            .where(PlanChange.organization_id == uuid.UUID(organization_id))
            .order_by(PlanChange.created_at)
        )
        return [(row.from_plan, row.to_plan, row.source) for row in rows]


async def count(ctx: AppContext, model: type[Any]) -> int:
    async with ctx.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def subscribe(
    client: httpx.AsyncClient,
    stripe_services: StripeServices,
    events: StripeEvents,
    owner: Account,
) -> tuple[Delivery, Delivery]:
    """Checkout for pro, paid on the double's page: (checkout completed, subscription created)."""
    response = await client.post(
        "/api/v1/billing/checkout", json={"plan": "pro"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    checkout = session_id_of(response.json()["url"])
    await asyncio.to_thread(stripe_services.pay_checkout, checkout)
    customer = str(stripe_services.client().v1.checkout.sessions.retrieve(checkout).customer)
    completed, created = await events.wait_for(
        "checkout.session.completed", "customer.subscription.created", customer=customer
    )
    return completed, created


@pytest.mark.usefixtures("synced")
async def test_checkout_then_its_webhook_puts_the_organization_on_the_plan(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()
    with stripe_events(stripe_services, ctx.settings) as events:
        response = await client.post(
            "/api/v1/billing/checkout", json={"plan": "pro"}, headers=owner.headers
        )
        assert response.status_code == 200, response.text
        checkout = stripe_services.client().v1.checkout.sessions.retrieve(
            session_id_of(response.json()["url"])
        )
        assert checkout.mode == "subscription"
        assert checkout.client_reference_id == owner.organization_id
        assert checkout.metadata is not None
        assert checkout.metadata.to_dict() == {
            "organization_id": owner.organization_id,
            "plan": "pro",
        }
        assert checkout.success_url == "http://127.0.0.1:8000/app/billing?checkout=success"
        assert checkout.cancel_url == "http://127.0.0.1:8000/app/billing?checkout=cancel"
        lines = stripe_services.client().v1.checkout.sessions.line_items.list(checkout.id)
        assert len(lines.data) == 3  # the flat price and the two metered ones
        await asyncio.to_thread(stripe_services.pay_checkout, checkout.id)
        assert (await billing(client, owner))["plan"] == "free"  # paying alone changes nothing
        (completed,) = await events.wait_for(
            "checkout.session.completed", customer=str(checkout.customer)
        )
        answer = await deliver(client, completed)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"received": True, "duplicate": False}
    state = await billing(client, owner)
    assert state["enabled"] is True
    assert state["plan"] == "pro"
    assert state["subscription"]["status"] == "active"
    assert state["subscription"]["current_period_end"] is not None
    assert state["payment_failed"] is False
    assert await plan_changes(ctx, owner.organization_id) == [("free", "pro", "stripe")]


@pytest.mark.usefixtures("synced")
async def test_deliveries_repeated_and_out_of_order_make_one_plan_change(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()
    with stripe_events(stripe_services, ctx.settings) as events:
        completed, created = await subscribe(client, stripe_services, events, owner)
    # An `updated` whose copy is older than what Stripe holds now (still incomplete, no
    # cancelation): only the subscription re-read from Stripe counts.
    event = json.loads(created.payload)
    stale = {**event, "id": f"evt_{uuid.uuid4().hex}", "type": "customer.subscription.updated"}
    stale["data"] = {"object": {**event["data"]["object"], "status": "incomplete"}}
    subscription_id = event["data"]["object"]["id"]
    stripe_services.client().v1.subscriptions.update(
        subscription_id, {"cancel_at_period_end": True}
    )
    updated = signed(stale, webhook_secret(ctx.settings))
    order = [updated, created, completed] * 5
    for delivery in order:
        response = await deliver(client, delivery)
        assert response.status_code == 200, response.text
    # Two deliveries of one event at once: one is processed, the other sees it done.
    twin = signed({**stale, "id": f"evt_{uuid.uuid4().hex}"}, webhook_secret(ctx.settings))
    answers = await asyncio.gather(deliver(client, twin), deliver(client, twin))
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True]
    assert await count(ctx, StripeEvent) == 4
    assert await plan_changes(ctx, owner.organization_id) == [("free", "pro", "stripe")]
    state = await billing(client, owner)
    assert (state["plan"], state["subscription"]["status"]) == ("pro", "active")
    assert state["subscription"]["cancel_at_period_end"] is True


async def test_a_forged_or_unsigned_webhook_changes_nothing(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    event = {
        "id": "evt_forged",
        "object": "event",
        "type": "customer.subscription.created",
        "data": {"object": {"id": "sub_forged", "status": "active",
                            "metadata": {"organization_id": owner.organization_id,
                                         "plan": "pro"}}},
    }  # fmt: skip
    secret = webhook_secret(ctx.settings)
    forged = signed(event, "whsec_not_the_endpoints")
    unsigned = Delivery(None, forged.payload)
    stale = signed(event, secret, at=1_700_000_000)  # outside the SDK's 5-minute tolerance
    tampered = Delivery(signed(event, secret).signature, forged.payload.replace(b"pro", b"ent"))
    for delivery in (forged, unsigned, stale, tampered):
        response = await deliver(client, delivery)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_signature"
    assert await count(ctx, StripeEvent) == 0
    assert (await billing(client, owner))["plan"] == "free"


async def test_unknown_event_types_are_acknowledged_and_ignored(
    ctx: AppContext, client: httpx.AsyncClient
) -> None:
    event = {"id": "evt_other", "object": "event", "type": "charge.refunded",
             "data": {"object": {"id": "ch_1"}}}  # fmt: skip
    response = await deliver(client, signed(event, webhook_secret(ctx.settings)))
    assert response.status_code == 200
    again = await deliver(client, signed(event, webhook_secret(ctx.settings)))
    assert again.json() == {"received": True, "duplicate": True}


@pytest.mark.usefixtures("synced")
async def test_checkout_refusals(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()
    for plan in ("free", "enterprise", "platinum"):
        response = await client.post(
            "/api/v1/billing/checkout", json={"plan": plan}, headers=owner.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "plan"
    portal = await client.post("/api/v1/billing/portal", headers=owner.headers)
    assert portal.status_code == 409
    assert portal.json()["error"]["code"] == "no_billing_account"
    member = await signup()
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            Membership(
                organization_id=uuid.UUID(owner.organization_id),
                user_id=uuid.UUID(member.user_id),
                role=Role.member,
            )
        )
    as_member = {**member.headers, "Saassy-Organization": owner.organization_id}
    for path, body in (("checkout", {"plan": "pro"}), ("portal", None)):
        refused = await client.post(f"/api/v1/billing/{path}", json=body, headers=as_member)
        assert refused.status_code == 403, refused.text
    assert (await client.get("/api/v1/billing", headers=as_member)).status_code == 200
    # The owner's API key is refused too, saying that keys never pay.
    key = await create_api_key(client, owner)
    for path, body in (("checkout", {"plan": "pro"}), ("portal", None)):
        refused = await client.post(
            f"/api/v1/billing/{path}", json=body, headers=bearer(key["key"])
        )
        assert refused.status_code == 403, refused.text
        error = refused.json()["error"]
        assert error["code"] == "role_required"
        assert error["message"].startswith("API keys cannot start checkout or open the billing")
    with stripe_events(stripe_services, ctx.settings) as events:
        completed, _ = await subscribe(client, stripe_services, events, owner)
        assert (await deliver(client, completed)).status_code == 200
    again = await client.post(
        "/api/v1/billing/checkout", json={"plan": "pro"}, headers=owner.headers
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "use_billing_portal"
    portal = await client.post("/api/v1/billing/portal", headers=owner.headers)
    assert portal.status_code == 200, portal.text
    assert portal.json()["url"].startswith("http")


@pytest.mark.usefixtures("synced")
async def test_two_checkouts_at_once_make_one_customer(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()
    answers = await asyncio.gather(
        *(
            client.post("/api/v1/billing/checkout", json={"plan": "pro"}, headers=owner.headers)
            for _ in range(2)
        )
    )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    sessions = [
        stripe_services.client().v1.checkout.sessions.retrieve(session_id_of(a.json()["url"]))
        for a in answers
    ]
    async with ctx.sessionmaker() as session:
        customers = (await session.scalars(select(BillingCustomer))).all()
    assert [c.organization_id for c in customers] == [uuid.UUID(owner.organization_id)]
    assert {s.customer for s in sessions} == {customers[0].stripe_customer_id}


@pytest.mark.usefixtures("synced")
async def test_one_open_checkout_and_none_once_stripe_has_a_subscription(
    client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()

    async def checkout() -> httpx.Response:
        return await client.post(
            "/api/v1/billing/checkout", json={"plan": "pro"}, headers=owner.headers
        )

    first, second = await checkout(), await checkout()
    assert (first.status_code, second.status_code) == (200, 200), second.text
    earlier, later = session_id_of(first.json()["url"]), session_id_of(second.json()["url"])
    sdk = stripe_services.client()
    assert sdk.v1.checkout.sessions.retrieve(earlier).status == "expired"
    with pytest.raises(httpx.HTTPStatusError):  # two paid would be two subscriptions
        await asyncio.to_thread(stripe_services.pay_checkout, earlier)
    await asyncio.to_thread(stripe_services.pay_checkout, later)

    # Paid, its webhook not here yet: Stripe's subscription refuses a third checkout.
    third = await checkout()
    assert third.status_code == 409, third.text
    assert third.json()["error"]["code"] == "subscription_pending"
    customer = str(sdk.v1.checkout.sessions.retrieve(later).customer)
    assert len(sdk.v1.subscriptions.list(params={"customer": customer}).data) == 1


async def test_staff_plan_changes_are_recorded_too(ctx: AppContext, signup: SignUp) -> None:
    from saassy.admin.service import set_plan

    owner = await signup()
    async with ctx.sessionmaker() as session, session.begin():
        await set_plan(session, ctx.settings.catalog, uuid.UUID(owner.organization_id), "pro")
        await set_plan(session, ctx.settings.catalog, uuid.UUID(owner.organization_id), "pro")
        organization = await session.get(Organization, uuid.UUID(owner.organization_id))
        assert organization is not None
        assert organization.plan == "pro"
    assert await plan_changes(ctx, owner.organization_id) == [("free", "pro", "staff")]


async def test_a_meter_error_report_is_logged_and_counted_for_staff(
    ctx: AppContext,
    client: httpx.AsyncClient,
    staff: httpx.AsyncClient,  # noqa: F811 - the fixture
) -> None:
    from saassy.billing.repository import EventRepository
    from saassy.billing.webhooks import METER_ERROR

    thin = {
        "id": "evt_test_65R9Ijk8Pj2QrL",
        "object": "v2.core.event",
        "type": METER_ERROR,
        "created": "2026-12-06T06:00:00.000Z",
        "related_object": {"id": "mtr_test_61R9", "type": "billing.meter",
                           "url": "/v1/billing/meters/mtr_test_61R9"},
    }  # fmt: skip
    response = await deliver(client, signed(thin, webhook_secret(ctx.settings)))
    assert response.status_code == 200, response.text
    async with ctx.sessionmaker() as session:
        assert await EventRepository(session).count_of_type(METER_ERROR) == 1
    page = re.sub(r"\s+", " ", (await staff.get("/app/staff/system")).text)
    assert "<dt>Meter error reports</dt><dd>1</dd>" in page
