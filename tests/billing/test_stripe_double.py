"""The Stripe double and localstripe, driven only through the real `stripe` SDK."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from tests.billing.stripe_services import API_KEY, StripeServices, serve_process
from tests.billing.webhook_receiver import webhook_receiver

SECRET = "whsec_test_double"


def catalog(client: stripe.StripeClient) -> dict[str, Any]:
    """A plan as billing sells it: a monthly licensed price and a metered overage price."""
    product = client.v1.products.create(params={"name": "Pro"})
    meter = client.v1.billing.meters.create(params={
        "display_name": "Task seconds", "event_name": "task_seconds",
        "default_aggregation": {"formula": "sum"},
        "customer_mapping": {"event_payload_key": "stripe_customer_id", "type": "by_id"},
        "value_settings": {"event_payload_key": "value"},
    })  # fmt: skip
    base = client.v1.prices.create(params={
        "product": product.id, "currency": "eur", "unit_amount": 2900, "lookup_key": "pro_monthly",
        "recurring": {"interval": "month", "usage_type": "licensed"}, "metadata": {"plan": "pro"},
    })  # fmt: skip
    overage = client.v1.prices.create(params={
        "product": product.id, "currency": "eur", "unit_amount_decimal": Decimal("0.05"),
        "recurring": {"interval": "month", "usage_type": "metered", "meter": meter.id},
    })  # fmt: skip
    return {"product": product, "meter": meter, "base": base, "overage": overage}


def event(client: stripe.StripeClient, customer: str, value: str, **extra: Any) -> Any:
    params: Any = {
        "event_name": "task_seconds", "payload": {"stripe_customer_id": customer, "value": value},
        **extra,
    }  # fmt: skip
    return client.v1.billing.meter_events.create(params=params)


def refused(call: Any) -> stripe.StripeError:
    with pytest.raises(stripe.StripeError) as raised:
        call()
    return raised.value


def test_prices_are_immutable_but_for_active_metadata_lookup_key_nickname(
    stripe_services: StripeServices,
) -> None:
    client = stripe_services.client()
    made = catalog(client)
    base = made["base"]
    assert (base.unit_amount, base.recurring.usage_type, base.type) == (
        2900,
        "licensed",
        "recurring",
    )
    assert made["overage"].unit_amount is None
    assert made["overage"].unit_amount_decimal == Decimal("0.05")  # the SDK coerces it

    updated = client.v1.prices.update(base.id, params={"active": False, "nickname": "Pro",
                                                       "metadata": {"tier": "2"}})  # fmt: skip
    assert (updated.active, updated.nickname, updated.metadata.to_dict()) == (
        False,
        "Pro",
        {"plan": "pro", "tier": "2"},
    )
    error = refused(lambda: client.v1.prices.update(base.id, params={"unit_amount": 1}))  # type: ignore[arg-type]
    assert (error.http_status, error.code) == (400, "parameter_unknown")

    active = client.v1.prices.list(params={"active": True, "product": made["product"].id})
    assert [p.id for p in active.data] == [made["overage"].id]
    by_key = client.v1.prices.list(params={"lookup_keys": ["pro_monthly"]})
    assert [p.id for p in by_key.data] == [base.id]


def test_a_lookup_key_moves_only_when_transferred(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    made = catalog(client)
    again = {"product": made["product"].id, "currency": "eur", "unit_amount": 3900,
             "lookup_key": "pro_monthly", "recurring": {"interval": "month"}}  # fmt: skip
    assert refused(lambda: client.v1.prices.create(params=again)).code == "parameter_invalid"  # type: ignore[arg-type]
    moved = client.v1.prices.create(params={**again, "transfer_lookup_key": True})  # type: ignore[typeddict-item]
    assert moved.lookup_key == "pro_monthly"
    assert client.v1.prices.retrieve(made["base"].id).lookup_key is None


def test_products_update_and_list_by_active(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    kept = client.v1.products.create(params={"name": "Team"})
    retired = client.v1.products.create(params={"name": "Legacy", "metadata": {"a": "1"}})
    client.v1.products.update(retired.id, params={"active": False, "metadata": {"a": ""}})
    assert [p.id for p in client.v1.products.list(params={"active": True}).data] == [kept.id]
    assert client.v1.products.retrieve(retired.id).metadata.to_dict() == {}


def test_meters_deactivate_reactivate_and_rename(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    meter = catalog(client)["meter"]
    customer = client.v1.customers.create(params={"email": "a@example.com"})
    assert client.v1.billing.meters.deactivate(meter.id).status == "inactive"
    assert refused(lambda: event(client, customer.id, "1")).code == "archived_meter"
    assert client.v1.billing.meters.reactivate(meter.id).status == "active"
    renamed = client.v1.billing.meters.update(meter.id, params={"display_name": "CPU seconds"})
    assert renamed.display_name == "CPU seconds"
    assert [m.id for m in client.v1.billing.meters.list().data] == [meter.id]


def test_checkout_pay_subscribes_in_localstripe_and_sends_a_signed_webhook(
    stripe_services: StripeServices,
) -> None:
    client = stripe_services.client()
    made = catalog(client)
    customer = client.v1.customers.create(params={"email": "owner@example.com"})
    with webhook_receiver() as receiver:
        stripe_services.webhook_register(receiver.url, SECRET)
        session = client.v1.checkout.sessions.create(params={
            "mode": "subscription", "customer": customer.id, "client_reference_id": "org_1",
            "line_items": [
                {"price": made["base"].id, "quantity": 1}, {"price": made["overage"].id},
            ],
            "success_url": "https://app.example/billing?session={CHECKOUT_SESSION_ID}",
            "cancel_url": "https://app.example/pricing", "metadata": {"org": "org_1"},
            "subscription_data": {"metadata": {"org": "org_1"}},
        })  # fmt: skip
        assert session.url == f"{stripe_services.api_base}/checkout/pay/{session.id}"
        page = httpx.get(session.url)
        assert '<button type="submit" name="action" value="pay">Pay</button>' in page.text

        paid = httpx.post(session.url, data={"action": "pay"})
        assert paid.status_code == 303
        assert paid.headers["location"] == f"https://app.example/billing?session={session.id}"

        completed = client.v1.checkout.sessions.retrieve(session.id)
        assert (completed.status, completed.payment_status) == ("complete", "paid")
        # the subscription lives in localstripe
        subscription = client.v1.subscriptions.retrieve(str(completed.subscription))
        assert subscription.customer == customer.id
        assert subscription["plan"]["id"] == made["base"].id
        assert subscription.metadata.to_dict() == {"org": "org_1"}

        received: dict[str, stripe.Event] = {}
        deadline = time.monotonic() + 15  # localstripe waits 1 s before it sends
        while {"checkout.session.completed", "customer.subscription.created"} - received.keys():
            delivery = receiver.next(timeout=max(0.1, deadline - time.monotonic()))
            verified = stripe.Webhook.construct_event(delivery.payload, delivery.signature, SECRET)
            received[verified.type] = verified
    webhook = received["checkout.session.completed"].data.object
    assert (webhook.id, webhook.subscription, webhook.client_reference_id) == (
        session.id,
        completed.subscription,
        "org_1",
    )
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(delivery.payload, delivery.signature, "whsec_other")


def test_cancel_returns_to_cancel_url_and_the_api_pay_needs_no_browser(
    stripe_services: StripeServices,
) -> None:
    client = stripe_services.client()
    made = catalog(client)
    customer = client.v1.customers.create(params={"email": "owner@example.com"})
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer.id,
        "line_items": [{"price": made["base"].id, "quantity": 2}],
        "success_url": "https://app.example/ok", "cancel_url": "https://app.example/pricing",
    })  # fmt: skip
    cancelled = httpx.post(session.url or "", data={"action": "cancel"})
    assert (cancelled.status_code, cancelled.headers["location"]) == (
        303,
        "https://app.example/pricing",
    )
    paid = stripe_services.pay_checkout(session.id)
    assert paid["status"] == "complete"
    assert client.v1.subscriptions.retrieve(paid["subscription"])["quantity"] == 2


def test_checkout_refuses_a_quantity_on_a_metered_price(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    made = catalog(client)
    customer = client.v1.customers.create(params={"email": "owner@example.com"})
    error = refused(lambda: client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer.id, "success_url": "https://app.example/ok",
        "line_items": [{"price": made["overage"].id, "quantity": 1}],
    }))  # fmt: skip
    assert (error.code, error.param) == ("parameter_invalid", "line_items[0][quantity]")  # type: ignore[attr-defined]


def test_billing_portal_page_links_back(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    customer = client.v1.customers.create(params={"email": "owner@example.com"})
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": "https://app.example/billing"}
    )
    assert portal.object == "billing_portal.session"
    assert 'href="https://app.example/billing"' in httpx.get(portal.url).text
    error = refused(
        lambda: client.v1.billing_portal.sessions.create(params={"customer": "cus_nope"})
    )
    assert (error.http_status, error.code) == (404, "resource_missing")


def test_meter_events_follow_stripes_rules(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    catalog(client)
    customer = client.v1.customers.create(params={"email": "owner@example.com"}).id
    accepted = event(client, customer, "42", identifier="usage-1")
    assert (accepted.identifier, accepted.payload["value"]) == ("usage-1", "42")

    assert refused(lambda: event(client, customer, "41", identifier="usage-1")).code == (
        "duplicate_meter_event"
    )
    assert stripe_services.duplicate_meter_events() == [
        {"identifier": "usage-1", "value": 41, "accepted_value": 42}
    ]
    now = int(time.time())
    old = now - 35 * 86400 - 60
    assert (
        refused(lambda: event(client, customer, "1", timestamp=old)).code
        == "timestamp_too_far_in_past"
    )
    soon = now + 5 * 60 + 60
    assert (
        refused(lambda: event(client, customer, "1", timestamp=soon)).code == "timestamp_in_future"
    )
    assert event(client, customer, "1", timestamp=now - 34 * 86400).timestamp == now - 34 * 86400
    assert (
        refused(lambda: event(client, "cus_unknown", "1")).code == "meter_event_customer_not_found"
    )
    assert refused(lambda: event(client, customer, "1.5")).code == "meter_event_invalid_value"
    assert (
        refused(lambda: event(client, customer, "1" * 16)).code
        == "meter_event_value_too_many_digits"
    )
    error = refused(lambda: client.v1.billing.meter_events.create(
        params={"event_name": "nothing", "payload": {"stripe_customer_id": customer, "value": "1"}}
    ))  # fmt: skip
    assert (error.http_status, error.code) == (400, "no_meter")
    assert [(e["identifier"], e["value"]) for e in stripe_services.meter_events()] == [
        ("usage-1", 42),
        (stripe_services.meter_events()[1]["identifier"], 1),
    ]


def test_event_summaries_sum_the_accepted_events(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    meter = catalog(client)["meter"]
    customer = client.v1.customers.create(params={"email": "a@example.com"}).id
    other = client.v1.customers.create(params={"email": "b@example.com"}).id
    hour = int(time.time()) // 3600 * 3600
    for offset, value in ((-7200 + 5, "10"), (-7200 + 60, "5"), (-3600 + 1, "7"), (0, "3")):
        event(client, customer, value, timestamp=hour + offset)
    event(client, other, "100", timestamp=hour)
    start, end = hour - 3 * 3600, hour + 3600

    whole = client.v1.billing.meters.event_summaries.list(
        meter.id, params={"customer": customer, "start_time": start, "end_time": end}
    )
    assert [(s.start_time, s.end_time, s.aggregated_value) for s in whole.data] == [
        (start, end, 25)
    ]
    hourly = client.v1.billing.meters.event_summaries.list(meter.id, params={
        "customer": customer, "start_time": start, "end_time": end, "value_grouping_window": "hour",
    })  # fmt: skip
    assert [(s.start_time, s.aggregated_value) for s in hourly.data] == [
        (hour, 3),
        (hour - 3600, 7),
        (hour - 7200, 15),
    ]
    error = refused(lambda: client.v1.billing.meters.event_summaries.list(
        meter.id, params={"customer": customer, "start_time": start + 1, "end_time": end}
    ))  # fmt: skip
    assert (error.code, error.param) == ("parameter_invalid", "start_time")  # type: ignore[attr-defined]


def test_an_idempotency_key_replays_its_first_answer(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    catalog(client)
    customer = client.v1.customers.create(params={"email": "a@example.com"}).id
    key = str(uuid.uuid4())
    first = event(client, customer, "4", identifier="k-1")
    again = client.v1.billing.meter_events.create(
        params={"event_name": "task_seconds", "identifier": "k-2",
                "payload": {"stripe_customer_id": customer, "value": "4"}},
        options={"idempotency_key": key},
    )  # fmt: skip
    replayed = client.v1.billing.meter_events.create(
        params={"event_name": "task_seconds", "identifier": "k-2",
                "payload": {"stripe_customer_id": customer, "value": "4"}},
        options={"idempotency_key": key},
    )  # fmt: skip
    assert replayed.created == again.created
    assert first.identifier == "k-1"
    error = refused(lambda: client.v1.billing.meter_events.create(
        params={"event_name": "task_seconds", "identifier": "k-3",
                "payload": {"stripe_customer_id": customer, "value": "4"}},
        options={"idempotency_key": key},
    ))  # fmt: skip
    assert isinstance(error, stripe.IdempotencyError)
    assert [e["identifier"] for e in stripe_services.meter_events()] == ["k-1", "k-2"]


def test_faults_answer_429_and_500_at_the_configured_rates(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    catalog(client)
    customer = client.v1.customers.create(params={"email": "a@example.com"}).id
    stripe_services.set_faults(["/v1/billing/meter_events"], error_500=0.10, error_429=0.05, seed=1)
    outcomes: dict[str, int] = {}
    lost: list[str] = []
    calls = 600
    for i in range(calls):
        try:
            event(client, customer, "1", identifier=f"chaos-{i}")
            outcome = "ok"
        except stripe.RateLimitError:
            outcome = "429"
        except stripe.APIError:
            outcome = "500"
            lost.append(f"chaos-{i}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert 0.07 * calls <= outcomes["500"] <= 0.13 * calls
    assert 0.03 * calls <= outcomes["429"] <= 0.07 * calls
    # Some 500s came after the event was accepted: a retry meets the duplicate.
    accepted = {e["identifier"] for e in stripe_services.meter_events()}
    landed = [identifier for identifier in lost if identifier in accepted]
    assert 0 < len(landed) < len(lost)
    stripe_services.clear_faults()
    for identifier in lost:
        if identifier in landed:
            with pytest.raises(stripe.InvalidRequestError) as duplicate:
                event(client, customer, "1", identifier=identifier)
            assert duplicate.value.code == "duplicate_meter_event"
        else:
            event(client, customer, "1", identifier=identifier)
    assert len(stripe_services.meter_events()) == calls - outcomes["429"]
    repeats = stripe_services.duplicate_meter_events()
    assert sorted(r["identifier"] for r in repeats) == sorted(landed)
    assert all(r["value"] == r["accepted_value"] == 1 for r in repeats)
    assert stripe_services.requests()["/v1/billing/meter_events"] == calls + len(lost)


def test_the_sdks_own_retry_of_a_lost_answer_gets_the_saved_result(
    stripe_services: StripeServices,
) -> None:
    client = stripe_services.client(max_network_retries=2)
    catalog(client)
    customer = client.v1.customers.create(params={"email": "a@example.com"}).id
    stripe_services.set_faults(["/v1/billing/meter_events"], error_500=1.0, lost_answer_share=1.0)
    accepted = event(client, customer, "9", identifier="lost-1")  # 500, then the replay
    assert accepted.identifier == "lost-1"
    assert [e["identifier"] for e in stripe_services.meter_events()] == ["lost-1"]
    assert stripe_services.requests()["/v1/billing/meter_events"] == 2

    stripe_services.set_faults(["/v1/billing/meter_events"], error_500=1.0, lost_answer_share=0.0)
    error = refused(lambda: event(client, customer, "9", identifier="internal-1"))
    assert error.http_status == 500  # saved under its key with Stripe-Should-Retry: false
    assert stripe_services.requests()["/v1/billing/meter_events"] == 3


def test_unknown_paths_are_forwarded_to_localstripe_verbatim(
    stripe_services: StripeServices,
) -> None:
    client = stripe_services.client()
    customer = client.v1.customers.create(params={"email": "a@example.com", "metadata": {"o": "1"}})
    metadata = client.v1.customers.retrieve(customer.id).metadata
    assert metadata is not None
    assert metadata["o"] == "1"
    unauthorised = httpx.get(f"{stripe_services.api_base}/v1/customers/{customer.id}")
    assert unauthorised.status_code == 401
    assert json.loads(unauthorised.text)["error"]["type"] == "invalid_request_error"


def test_a_declined_card_leaves_the_session_open_until_a_good_one_pays(
    stripe_services: StripeServices,
) -> None:
    client = stripe_services.client()
    made = catalog(client)
    customer = client.v1.customers.create(params={"email": "owner@example.com"}).id
    declining = client.v1.payment_methods.attach(
        "pm_card_chargeCustomerFail", params={"customer": customer}
    )
    client.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": declining.id}}
    )
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer, "success_url": "https://app.example/ok",
        "line_items": [{"price": made["base"].id, "quantity": 1}],
    })  # fmt: skip
    page = httpx.post(session.url or "", data={"action": "pay"})
    assert page.status_code == 402
    assert 'role="alert"' in page.text
    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    assert client.v1.subscriptions.list(params={"customer": customer}).data == []

    good = client.v1.payment_methods.attach("pm_card_visa", params={"customer": customer})
    client.v1.customers.update(
        customer, params={"invoice_settings": {"default_payment_method": good.id}}
    )
    assert httpx.post(session.url or "", data={"action": "pay"}).status_code == 303
    assert client.v1.subscriptions.list(params={"customer": customer}).data[0].status == "active"


# stripe 16.1.0's HTTPXClient hands httpx 0.28 raw bytes as `data=`; only the warning is wrong.
@pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")
async def test_the_sdks_async_calls_reach_the_double(stripe_services: StripeServices) -> None:
    # the SDK's async client, closed here rather than by the GC (sync calls go through it too)
    http = stripe.HTTPXClient(allow_sync_methods=True)
    client = stripe_services.client(http_client=http)
    try:
        catalog(client)
        customer = await client.v1.customers.create_async(params={"email": "a@example.com"})
        accepted = await client.v1.billing.meter_events.create_async(params={
            "event_name": "task_seconds", "identifier": "async-1",
            "payload": {"stripe_customer_id": customer.id, "value": "2"},
        })  # fmt: skip
    finally:
        http.close()  # type: ignore[no-untyped-call]
        await http.close_async()  # type: ignore[no-untyped-call]
    assert accepted.identifier == "async-1"
    assert [e["identifier"] for e in stripe_services.meter_events()] == ["async-1"]


async def test_one_idempotency_key_sent_at_once_many_times_makes_one_object(
    stripe_services: StripeServices,
) -> None:
    headers = {"Authorization": "Bearer sk_test_saassy", "Idempotency-Key": str(uuid.uuid4())}
    async with httpx.AsyncClient(base_url=stripe_services.api_base, headers=headers) as http:
        answers = await asyncio.gather(
            *(http.post("/v1/customers", data={"email": "same@example.com"}) for _ in range(20))
        )
    assert {a.status_code for a in answers} <= {200, 409}  # 409: the first is still running
    assert len({a.json()["id"] for a in answers if a.status_code == 200}) == 1
    client = stripe_services.client()
    assert len(client.v1.customers.list(params={"email": "same@example.com"}).data) == 1


def test_a_deleted_customer_reports_no_more_usage(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    catalog(client)
    customer = client.v1.customers.create(params={"email": "gone@example.com"}).id
    event(client, customer, "1")
    client.v1.customers.delete(customer)
    assert refused(lambda: event(client, customer, "1")).code == "meter_event_customer_not_found"


def test_a_flush_forgets_the_webhook_endpoints_of_both_servers(
    stripe_services: StripeServices,
) -> None:
    client = stripe_services.client()
    with webhook_receiver() as receiver:
        stripe_services.webhook_register(receiver.url, SECRET)
        stripe_services.flush()
        made = catalog(client)
        customer = client.v1.customers.create(params={"email": "a@example.com"})  # localstripe
        session = client.v1.checkout.sessions.create(params={
            "mode": "subscription", "customer": customer.id, "success_url": "https://app.example/ok",
            "line_items": [{"price": made["base"].id, "quantity": 1}],
        })  # fmt: skip
        stripe_services.pay_checkout(session.id)  # the double's event
        # localstripe sends a second after the call. An earlier test's event still on its way
        # may land here; none of this test's may.
        received = []
        with contextlib.suppress(queue.Empty):
            while True:
                received.append(receiver.next(timeout=2).payload)
    assert not [body for body in received if customer.id.encode() in body]
    assert stripe_services.webhook_deliveries() == []


async def test_paying_twice_at_once_makes_one_subscription(stripe_services: StripeServices) -> None:
    client = stripe_services.client()
    made = catalog(client)
    customer = client.v1.customers.create(params={"email": "a@example.com"}).id
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer, "success_url": "https://app.example/ok",
        "line_items": [{"price": made["base"].id, "quantity": 1}],
    })  # fmt: skip
    async with httpx.AsyncClient() as http:
        clicks = await asyncio.gather(
            *(http.post(session.url or "", data={"action": "pay"}) for _ in range(5))
        )
    assert sorted(click.status_code for click in clicks) == [303, 400, 400, 400, 400]
    assert len(client.v1.subscriptions.list(params={"customer": customer}).data) == 1


def _listening(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net shows them) listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, _, hex_port = fields[1].rpartition(":")
            if fields[3] == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


def test_both_servers_listen_on_loopback_only(stripe_services: StripeServices) -> None:
    for base in (stripe_services.localstripe_url, stripe_services.api_base):
        port = int(base.rsplit(":", 1)[1])
        assert _listening(port) == {"0100007F"}, base  # 127.0.0.1, not [::] or 0.0.0.0


def test_two_localstripes_never_share_their_objects(
    stripe_services: StripeServices, tmp_path: Path
) -> None:
    made = stripe_services.client().v1.customers.create(params={"email": "a@example.com"})
    # A second one, loading what it finds saved (no --from-scratch), as another test run's
    # localstripe would: it finds nothing of the first's.
    process, base = serve_process(
        "second-localstripe",
        ["-m", "tests.billing.stripe_double.anchored_localstripe"],
        "/v1/customers",
        tmp_path,
    )
    try:
        listed = httpx.get(
            f"{base}/v1/customers", headers={"Authorization": f"Bearer {API_KEY}"}
        ).json()
        assert made.id not in {customer["id"] for customer in listed["data"]}
        assert listed["data"] == []
    finally:
        process.terminate()
        process.wait(timeout=10)
