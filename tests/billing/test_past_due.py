"""A failed payment: the plan keeps working through the grace period, with a banner and one
e-mail; after it, the default plan; paying puts the organization back on its plan."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from saassy.billing.grace import GraceSweeper
from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import utcnow
from tests.audit.support import entries
from tests.billing.billing_app import (
    billing_settings,
    deliver,
    stripe_events,
    synced,  # noqa: F401 - a fixture
)
from tests.billing.stripe_services import API_KEY, StripeServices
from tests.billing.test_subscriptions import billing, plan_changes, subscribe
from tests.conftest import SignUp
from tests.email.mail import outbox

# A card whose every charge asks for 3-D Secure: refusing it is how localstripe fails a renewal
# (its declined cards fail only a subscription's first payment).
AUTHENTICATED_CARD = "4000002500003155"
GOOD_CARD = "4242424242424242"


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, stripe_services: StripeServices
) -> Settings:
    return billing_settings(settings_factory, tmp_path, stripe_services, billing_grace_days=3)


def use_card(stripe_services: StripeServices, customer: str, number: str) -> None:
    """The customer's default card becomes `number` (raw card numbers: test mode only)."""
    auth = {"Authorization": f"Bearer {API_KEY}"}
    base = stripe_services.api_base
    method = stripe_services.http.post(
        f"{base}/v1/payment_methods",
        headers=auth,
        data={"type": "card", "card[number]": number, "card[exp_month]": "12",
              "card[exp_year]": "2034", "card[cvc]": "123"},
    )  # fmt: skip
    method.raise_for_status()
    method_id = method.json()["id"]
    stripe_services.http.post(
        f"{base}/v1/payment_methods/{method_id}/attach", headers=auth, data={"customer": customer}
    ).raise_for_status()
    stripe_services.http.post(
        f"{base}/v1/customers/{customer}",
        headers=auth,
        data={"invoice_settings[default_payment_method]": method_id},
    ).raise_for_status()


def renew_and_refuse(stripe_services: StripeServices, customer: str, subscription: str) -> str:
    """The next period's invoice, charged now (Stripe does this at each period's end), and the
    customer's bank refusing the payment's 3-D Secure check."""
    client = stripe_services.client()
    invoice = client.v1.invoices.create({"customer": customer, "subscription": subscription})
    charged = client.v1.invoices.pay(invoice.id)
    intent = client.v1.payment_intents.retrieve(str(charged.payment_intent))
    assert intent.status == "requires_action"
    stripe_services.http.post(
        f"{stripe_services.api_base}/v1/payment_intents/{intent.id}/_authenticate",
        headers={"Authorization": f"Bearer {API_KEY}"},
        data={"client_secret": intent.client_secret, "success": "false"},
    ).raise_for_status()
    return invoice.id


@pytest.mark.usefixtures("synced")
async def test_payment_failure_grace_then_default_plan_then_paying_restores_it(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()
    with stripe_events(stripe_services, ctx.settings) as events:
        completed, created = await subscribe(client, stripe_services, events, owner)
        assert (await deliver(client, completed)).status_code == 200
        subscription = stripe_services.client().v1.subscriptions.retrieve(
            events.event_object(created)["id"]
        )
        customer = str(subscription.customer)
        await asyncio.to_thread(use_card, stripe_services, customer, AUTHENTICATED_CARD)
        invoice = await asyncio.to_thread(
            renew_and_refuse, stripe_services, customer, subscription.id
        )
        (failed,) = await events.wait_for("invoice.payment_failed", customer=customer)
        for _ in range(3):  # Stripe's retries: one e-mail still
            assert (await deliver(client, failed)).status_code == 200
        state = await billing(client, owner)
        assert state["plan"] == "pro"  # within the grace period it keeps working
        assert state["payment_failed"] is True
        assert state["subscription"]["status"] == "past_due"
        assert state["subscription"]["grace_ends_at"] is not None
        mails = [m for m in await outbox(ctx, owner.email) if "payment failed" in m.subject]
        assert len(mails) == 1
        assert "3 days" in mails[0].body
        assert "/app/billing" in mails[0].body

        sweeper = GraceSweeper(ctx.sessionmaker, ctx.settings, clock=utcnow)
        assert await sweeper.sweep() == 0  # not yet
        sweeper.clock = lambda: utcnow() + timedelta(days=3, minutes=1)
        assert await sweeper.sweep() == 1
        assert await sweeper.sweep() == 0
        assert (await billing(client, owner))["plan"] == "free"
        # Stripe retrying the failure's delivery after the grace: nothing changes.
        assert (await deliver(client, failed)).json()["duplicate"] is True
        assert (await billing(client, owner))["plan"] == "free"

        await asyncio.to_thread(use_card, stripe_services, customer, GOOD_CARD)
        stripe_services.client().v1.invoices.pay(invoice)
        (paid,) = await events.wait_for("invoice.payment_succeeded", customer=customer)
        assert (await deliver(client, paid)).status_code == 200
    state = await billing(client, owner)
    assert (state["plan"], state["payment_failed"]) == ("pro", False)
    assert state["subscription"]["past_due_since"] is None
    assert await plan_changes(ctx, owner.organization_id) == [
        ("free", "pro", "stripe"),
        ("pro", "free", "grace_ended"),
        ("free", "pro", "stripe"),
    ]
    # Each is one entry of the organization's audit log, made by nobody: Stripe, the sweep.
    changed = await entries(ctx, "plan.changed")
    assert [(e.details["to_plan"], e.details["source"]) for e in changed] == [
        ("pro", "stripe"),
        ("free", "grace_ended"),
        ("pro", "stripe"),
    ]
    assert {(e.actor_user_id, e.by_staff, e.ip, str(e.organization_id)) for e in changed} == {
        (None, False, None, owner.organization_id)
    }
    mails = [m for m in await outbox(ctx, owner.email) if "payment failed" in m.subject]
    assert len(mails) == 1
