"""The Stripe client billing uses: one per process, async, through the official SDK.

Retries are the callers' (the meter-event outbox retries with its own backoff and fixed
identifiers; a request answering a person fails fast), so the SDK retries nothing itself.
`SAASSY_STRIPE_API_BASE` points it at a Stripe-compatible server (the tests' double).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe
from stripe._base_address import BaseAddresses

from saassy.config import Settings

TIMEOUT_S = 20.0


class HTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx client, handing the encoded form to httpx as `content`: as `data` (what
    the SDK passes) httpx warns that raw bytes there are deprecated, on every call."""

    def _get_request_args_kwargs(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ) -> tuple[list[Any], dict[str, Any]]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        body = kwargs.pop("data", None)
        if body:
            kwargs["content"] = body
        return args, kwargs

    async def aclose(self) -> None:
        await self.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK


def billing_enabled(settings: Settings) -> bool:
    return settings.stripe_secret_key is not None


def new_http_client() -> HTTPXClient:
    """The connection pool a client uses; its owner closes it (`aclose`) when done."""
    return HTTPXClient(timeout=TIMEOUT_S, allow_sync_methods=True)


def stripe_client(
    settings: Settings, http_client: HTTPXClient | None = None
) -> stripe.StripeClient | None:
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
        http_client=http_client or new_http_client(),
    )
