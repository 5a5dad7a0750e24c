"""Stripe's billing periods are our calendar months (UTC): checkout anchors the subscription to
the first instant of next month, its first invoice charges the rest of this one prorated, and
renewals fall on the 1st. The Stripe double honours the anchor and refuses one Stripe refuses."""

from __future__ import annotations

import asyncio
import calendar
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from saassy.config import Settings
from saassy.context import AppContext
from tests.billing.billing_app import (
    billing_settings,
    deliver,
    session_id_of,
    stripe_events,
    synced,  # noqa: F401 - a fixture
)
from tests.billing.stripe_services import StripeServices
from tests.billing.test_stripe_double import catalog, refused
from tests.conftest import SignUp

PRO_CENTS = 4900
ANCHOR = "subscription_data[billing_cycle_anchor]"


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, stripe_services: StripeServices
) -> Settings:
    return billing_settings(settings_factory, tmp_path, stripe_services)


def month_start(moment: int) -> datetime:
    at = datetime.fromtimestamp(moment, UTC)
    return datetime(at.year, at.month, 1, tzinfo=UTC)


def next_month(moment: int) -> int:
    """The first instant (UTC) of the calendar month after the one `moment` is in."""
    first = month_start(moment)
    year, month = (first.year + 1, 1) if first.month == 12 else (first.year, first.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


def prorated(cents: int, start: int, anchor: int) -> int:
    """The rest of the calendar month from `start` to `anchor` (its end), to the second,
    rounded half up to the cent: the share of the month that the first invoice charges."""
    month = anchor - int(month_start(start).timestamp())
    share = Decimal(cents) * (anchor - start) / month
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def stripe_error(call: Callable[[], Any]) -> dict[str, Any]:
    error = refused(call).error
    assert error is not None
    return {"type": error.type, "param": error.param, "message": error.message}


@pytest.mark.usefixtures("synced")
async def test_checkout_subscribes_for_the_calendar_month_with_the_first_invoice_prorated(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()
    stripe_client = stripe_services.client()
    with stripe_events(stripe_services, ctx.settings) as events:
        response = await client.post(
            "/api/v1/billing/checkout", json={"plan": "pro"}, headers=owner.headers
        )
        assert response.status_code == 200, response.text
        checkout = stripe_client.v1.checkout.sessions.retrieve(
            session_id_of(response.json()["url"])
        )
        await asyncio.to_thread(stripe_services.pay_checkout, checkout.id)
        (created,) = await events.wait_for(
            "customer.subscription.created", customer=str(checkout.customer)
        )
        assert (await deliver(client, created)).status_code == 200
    subscription = stripe_client.v1.subscriptions.retrieve(
        str(stripe_client.v1.checkout.sessions.retrieve(checkout.id).subscription)
    )
    anchor = next_month(checkout.created)
    start = subscription.start_date
    assert subscription.billing_cycle_anchor == anchor
    assert (subscription["current_period_start"], subscription["current_period_end"]) == (
        start,
        anchor,
    )

    (invoice,) = stripe_client.v1.invoices.list({"customer": str(checkout.customer)}).data
    assert invoice.total == prorated(PRO_CENTS, start, anchor) < PRO_CENTS
    assert (invoice.period_start, invoice.period_end) == (start, anchor)
    (line,) = invoice.lines.data
    assert (line.period.start, line.period.end, line["proration"]) == (start, anchor, True)

    answer = await client.get("/api/v1/billing", headers=owner.headers)
    state = answer.json()["subscription"]
    assert datetime.fromisoformat(state["current_period_start"]).timestamp() == start
    assert datetime.fromisoformat(state["current_period_end"]).timestamp() == anchor


def _session(client: stripe.StripeClient, made: dict[str, Any], customer: str, **data: Any) -> Any:
    return client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer,
        "line_items": [{"price": made["base"].id, "quantity": 1}, {"price": made["overage"].id}],
        "success_url": "https://app.example/billing", "subscription_data": data,
    })  # fmt: skip


def test_the_double_refuses_an_anchor_stripe_refuses(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    made = catalog(client)
    customer = client.v1.customers.create().id
    now = int(time.time())

    past = stripe_error(lambda: _session(client, made, customer, billing_cycle_anchor=now - 60))
    assert (past["type"], past["param"]) == ("invalid_request_error", ANCHOR)
    assert "must be in the future" in past["message"]

    # a month is at most 31 days: 32 days on is past the natural billing date of any month
    far = stripe_error(
        lambda: _session(client, made, customer, billing_cycle_anchor=now + 32 * 86400)
    )
    assert (far["type"], far["param"]) == ("invalid_request_error", ANCHOR)
    assert "cannot be later than next natural billing date" in far["message"]

    behavior = stripe_error(lambda: _session(client, made, customer, proration_behavior="always"))
    assert behavior["param"] == "subscription_data[proration_behavior]"
    unknown = stripe_error(lambda: _session(client, made, customer, billing_cycle_anchors=now))
    assert unknown["param"] == "subscription_data[billing_cycle_anchors]"

    # the same rules on a subscription made through the API (localstripe, anchored)
    too_far: Any = {
        "customer": customer,
        "items": [{"plan": made["base"].id}],
        "billing_cycle_anchor": now + 32 * 86400,
    }
    direct = stripe_error(lambda: client.v1.subscriptions.create(too_far))
    assert (direct["type"], direct["param"]) == ("invalid_request_error", "billing_cycle_anchor")
    assert "cannot be later than next natural billing date" in direct["message"]


def test_the_double_honours_an_anchor_without_proration_and_one_paid_after_it_passed(
    stripe_services: StripeServices,
) -> None:
    client = stripe_services.client()
    made = catalog(client)

    customer = client.v1.customers.create().id
    anchor = next_month(int(time.time()))
    free_rest = _session(
        client, made, customer, billing_cycle_anchor=anchor, proration_behavior="none"
    )
    assert free_rest.amount_total == 0
    subscription = client.v1.subscriptions.retrieve(
        stripe_services.pay_checkout(free_rest.id)["subscription"]
    )
    assert subscription["current_period_end"] == anchor
    (invoice,) = client.v1.invoices.list({"customer": customer}).data
    assert invoice.total == 0

    # Stripe's Checkout, paid once the anchor has passed: a whole period from the anchor
    customer = client.v1.customers.create().id
    soon = int(time.time()) + 2
    late = _session(client, made, customer, billing_cycle_anchor=soon)
    time.sleep(max(0.0, soon + 1 - time.time()))  # for the wall clock to pass the anchor
    subscription = client.v1.subscriptions.retrieve(
        stripe_services.pay_checkout(late.id)["subscription"]
    )
    assert subscription["current_period_start"] == soon
    assert subscription["current_period_end"] == next_month_after_day(soon)
    (invoice,) = client.v1.invoices.list({"customer": customer}).data
    assert invoice.total == made["base"].unit_amount


def next_month_after_day(moment: int) -> int:
    """`moment` one calendar month on, the day clamped to the month's last."""
    at = datetime.fromtimestamp(moment, UTC)
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    day = min(at.day, calendar.monthrange(year, month)[1])
    return int(at.replace(year=year, month=month, day=day).timestamp())
