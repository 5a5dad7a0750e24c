"""A Stripe client for one block of work (a command, a request, a background loop), its
connections closed when the block ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import stripe

from saassy.billing.stripe_api import new_http_client, stripe_client
from saassy.config import Settings


@asynccontextmanager
async def open_stripe_client(settings: Settings) -> AsyncIterator[stripe.StripeClient | None]:
    """`stripe_client` (None when billing is off) whose connections close with the block."""
    http = new_http_client()
    try:
        yield stripe_client(settings, http)
    finally:
        await http.aclose()
