"""The double's objects carry the keys Stripe's own example objects have (its OpenAPI fixtures).

The fixtures sit beside the repository, in `../shared/reference/` as CI has them, or where
SAASSY_TEST_STRIPE_FIXTURES points (a SAASSY_TEST_ name: the server commands refuse any other
unknown SAASSY_* variable); a clone of the repository alone skips this test.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.billing.stripe_services import REPOSITORY, StripeServices
from tests.billing.test_stripe_double import catalog, event

FIXTURES = Path(
    os.environ.get("SAASSY_TEST_STRIPE_FIXTURES")
    or REPOSITORY.parent / "shared" / "reference" / "stripe-fixtures.json"
)
# Of a Checkout Session's many keys, those billing could read; the other objects are small
# enough to carry every key their fixture has.
CHECKOUT_KEYS = {
    "id", "object", "mode", "status", "payment_status", "customer", "customer_email",
    "customer_details", "client_reference_id", "metadata", "success_url", "cancel_url", "url",
    "subscription", "invoice", "payment_intent", "setup_intent", "currency", "amount_subtotal",
    "amount_total", "total_details", "created", "expires_at", "livemode", "locale", "ui_mode",
    "payment_method_types", "allow_promotion_codes",
}  # fmt: skip


def missing_keys(fixture: dict[str, Any], ours: dict[str, Any], path: str = "") -> list[str]:
    """Keys of `fixture` absent from `ours`, looking into nested objects both have."""
    absent = []
    for key, value in fixture.items():
        if key not in ours:
            absent.append(path + key)
        elif isinstance(value, dict) and isinstance(ours[key], dict) and ours[key]:
            absent += missing_keys(value, ours[key], f"{path}{key}.")
    return absent


@pytest.fixture
def fixtures() -> dict[str, dict[str, Any]]:
    if not FIXTURES.exists():
        pytest.skip(
            f"Stripe's fixture objects are not at {FIXTURES}: set SAASSY_TEST_STRIPE_FIXTURES "
            "to stripe/openapi's openapi/fixtures3.json"
        )
    resources: dict[str, dict[str, Any]] = json.loads(FIXTURES.read_text())["resources"]
    return resources


def test_objects_have_the_keys_of_stripes_fixtures(
    stripe_services: StripeServices, fixtures: dict[str, dict[str, Any]]
) -> None:
    client = stripe_services.client()
    made = catalog(client)
    customer = client.v1.customers.create(params={"email": "a@example.com"}).id
    meter_event = event(client, customer, "3")
    hour = int(time.time()) // 3600 * 3600
    summary = client.v1.billing.meters.event_summaries.list(
        made["meter"].id, params={"customer": customer, "start_time": hour - 3600,
                                  "end_time": hour + 3600},
    ).data[0]  # fmt: skip
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer, "success_url": "https://app.example/ok",
        "line_items": [{"price": made["base"].id, "quantity": 1}],
    })  # fmt: skip
    portal = client.v1.billing_portal.sessions.create(params={"customer": customer})
    ours = {
        "price": made["base"], "billing.meter": made["meter"], "billing.meter_event": meter_event,
        "billing.meter_event_summary": summary, "billing_portal.session": portal,
    }  # fmt: skip
    for name, obj in ours.items():
        assert missing_keys(fixtures[name], obj.to_dict()) == [], name
    assert fixtures["checkout.session"].keys() >= CHECKOUT_KEYS
    assert session.to_dict().keys() >= CHECKOUT_KEYS
    # the raw JSON too, not only what the SDK made of it
    raw = httpx.get(f"{stripe_services.api_base}/v1/prices/{made['base'].id}",
                    headers={"Authorization": "Bearer sk_test_contract"}).json()  # fmt: skip
    assert missing_keys(fixtures["price"], raw) == []
