"""The Stripe client billing uses: one per process, async, through the official SDK.

Retries are the callers' (the meter-event outbox retries with its own backoff and fixed
identifiers; a request answering a person fails fast), so the SDK retries nothing itself.
`SAASSY_STRIPE_API_BASE` points it at a Stripe-compatible server (the tests' double).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe
from stripe._base_address import BaseAddresses

from saassy.config import Settings

TIMEOUT_S = 20.0


def billing_enabled(settings: Settings) -> bool:
    return settings.stripe_secret_key is not None


def stripe_client(
    settings: Settings, http_client: stripe.HTTPXClient | None = None
) -> stripe.StripeClient | None:
    """None when billing is off (no SAASSY_STRIPE_SECRET_KEY); `http_client` for a caller that
    closes its connections itself (`open_stripe_client`)."""
    if settings.stripe_secret_key is None:
        return None
    base: BaseAddresses = {}
    if settings.stripe_api_base is not None:
        base = {"api": settings.stripe_api_base, "files": settings.stripe_api_base}
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses=base,
        max_network_retries=0,
        http_client=http_client or stripe.HTTPXClient(timeout=TIMEOUT_S, allow_sync_methods=True),
    )


@asynccontextmanager
async def open_stripe_client(settings: Settings) -> AsyncIterator[stripe.StripeClient | None]:
    """`stripe_client` whose connections are closed when the block ends."""
    http = stripe.HTTPXClient(timeout=TIMEOUT_S, allow_sync_methods=True)
    try:
        yield stripe_client(settings, http)
    finally:
        await http.close_async()  # type: ignore[no-untyped-call]
        http.close()  # type: ignore[no-untyped-call]
