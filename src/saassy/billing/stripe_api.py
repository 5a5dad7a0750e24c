"""The Stripe client billing uses: one per process, async, through the official SDK.

Retries are the callers' (the meter-event outbox retries with its own backoff and fixed
identifiers; a request answering a person fails fast), so the SDK retries nothing itself.
`SAASSY_STRIPE_API_BASE` points it at a Stripe-compatible server (the tests' double).
"""

from __future__ import annotations

import stripe
from stripe._base_address import BaseAddresses

from saassy.config import Settings

TIMEOUT_S = 20.0


def billing_enabled(settings: Settings) -> bool:
    return settings.stripe_secret_key is not None


def stripe_client(settings: Settings) -> stripe.StripeClient | None:
    """None when billing is off (no SAASSY_STRIPE_SECRET_KEY)."""
    if settings.stripe_secret_key is None:
        return None
    base: BaseAddresses = {}
    if settings.stripe_api_base is not None:
        base = {"api": settings.stripe_api_base, "files": settings.stripe_api_base}
    return stripe.StripeClient(
        settings.stripe_secret_key.get_secret_value(),
        base_addresses=base,
        max_network_retries=0,
        http_client=stripe.HTTPXClient(timeout=TIMEOUT_S, allow_sync_methods=True),
    )
