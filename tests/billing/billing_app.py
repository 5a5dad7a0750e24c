"""Billing tests' app: a catalog with paid plans and a premium task type, settings pointing the
SDK at the Stripe double, and Stripe's webhooks relayed into the in-process app as signed."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import queue
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe

from saassy.billing.catalog_sync import sync_catalog
from saassy.config import Settings
from saassy.context import AppContext
from tests.billing.stripe_services import API_KEY, StripeServices
from tests.billing.webhook_receiver import Delivery, Receiver, webhook_receiver

WEBHOOK_PATH = "/api/v1/billing/webhooks/stripe"

CATALOG = """
default_plan = "free"

[plans.free]
name = "Free"
price_usd_month = 0
tasks_per_month = 100
api_rate_limit = "1000/minute"

[plans.pro]
name = "Pro"
price_usd_month = 49
tasks_per_month = 10000
overage_usd_per_task = 0.01
overage_usd_per_compute_unit = 0.05
api_rate_limit = "1000/minute"

[plans.enterprise]
name = "Enterprise"
api_rate_limit = "1000/minute"

[task_types.echo]
title = "Echo"
command = ["/bin/true"]

[task_types.render]
title = "Premium render"
command = ["/bin/true"]
requires_plan = ["pro", "enterprise"]
"""


def write_catalog(tmp_path: Path, text: str = CATALOG) -> Path:
    path = tmp_path / "saassy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def billing_settings(
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
    stripe_services: StripeServices,
    **overrides: Any,
) -> Settings:
    return settings_factory(
        **{
            "config": write_catalog(tmp_path),
            "stripe_secret_key": API_KEY,
            "stripe_webhook_secret": f"whsec_{secrets.token_hex(16)}",
            "stripe_api_base": stripe_services.api_base,
            **overrides,
        }
    )


@pytest.fixture
async def synced(ctx: AppContext) -> None:
    """The catalog's plans and meters made in the double, as `saassy billing sync` does."""
    assert ctx.stripe_api is not None
    async with ctx.sessionmaker() as session, session.begin():
        await sync_catalog(session, ctx.stripe_api, ctx.settings.catalog)


@dataclass
class StripeEvents:
    """Every event Stripe sent (as signed), gathered from the receiver."""

    receiver: Receiver
    secret: str
    seen: list[Delivery] = field(default_factory=list)

    @staticmethod
    def type_of(delivery: Delivery) -> str:
        return str(json.loads(delivery.payload)["type"])

    @staticmethod
    def event_object(delivery: Delivery) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(delivery.payload)["data"]["object"]
        return found

    def of_type(self, event_type: str, customer: str) -> list[Delivery]:
        return [
            d
            for d in self.seen
            if self.type_of(d) == event_type and self.event_object(d).get("customer") == customer
        ]

    async def wait_for(
        self, *event_types: str, customer: str, timeout_s: float = 20
    ) -> list[Delivery]:
        """Gather deliveries until one of each type about `customer` has come; the first of
        each. (localstripe sends a second late: an earlier test's events, signed for the
        endpoint registered when they leave, may come here; their customer is another.)"""
        deadline = time.monotonic() + timeout_s
        while not all(self.of_type(t, customer) for t in event_types):
            left = deadline - time.monotonic()
            assert left > 0, f"no {event_types} within {timeout_s} s: {self.types()}"
            try:
                delivery = await asyncio.to_thread(self.receiver.next, min(left, 1.0))
            except queue.Empty:
                continue
            if self.ours(delivery):
                self.seen.append(delivery)
        return [self.of_type(t, customer)[0] for t in event_types]

    def ours(self, delivery: Delivery) -> bool:
        """Signed with this test's secret (a late event for an earlier test's endpoint, which
        may have had the same port, is not)."""
        try:
            stripe.WebhookSignature.verify_header(
                delivery.payload.decode(), delivery.signature or "", self.secret, 300
            )
        except stripe.SignatureVerificationError:
            return False
        return True

    def types(self) -> list[str]:
        return [self.type_of(d) for d in self.seen]


@contextmanager
def stripe_events(stripe_services: StripeServices, settings: Settings) -> Iterator[StripeEvents]:
    """Stripe's webhooks (the double's and localstripe's) signed with this app's secret."""
    secret = settings.stripe_webhook_secret
    assert secret is not None
    with webhook_receiver() as receiver:
        stripe_services.webhook_register(receiver.url, secret.get_secret_value())
        yield StripeEvents(receiver, secret.get_secret_value())


async def deliver(client: httpx.AsyncClient, delivery: Delivery) -> httpx.Response:
    """Hand one signed delivery to the app, as Stripe would."""
    headers = {"Content-Type": "application/json"}
    if delivery.signature is not None:
        headers["Stripe-Signature"] = delivery.signature
    return await client.post(WEBHOOK_PATH, content=delivery.payload, headers=headers)


def signed(event: dict[str, Any], secret: str, *, at: int | None = None) -> Delivery:
    """An event signed as Stripe signs: `t=<time>,v1=HMAC-SHA256(secret, "<time>.<payload>")`."""
    payload = json.dumps(event).encode()
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return Delivery(f"t={timestamp},v1={digest.hexdigest()}", payload)


def webhook_secret(settings: Settings) -> str:
    secret = settings.stripe_webhook_secret
    assert secret is not None
    return secret.get_secret_value()


def session_id_of(checkout_url: str) -> str:
    """The Checkout Session a hosted-page URL shows (the double's `/checkout/pay/<id>`)."""
    return checkout_url.rstrip("/").rsplit("/", 1)[-1]
