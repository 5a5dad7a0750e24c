"""The double's calls to localstripe: mirrors, look-ups, subscriptions, and verbatim forwarding."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from tests.billing.stripe_double import forms
from tests.billing.stripe_double.errors import StripeError

# localstripe takes any `sk_…` key; the hosted pages act without the caller's key.
DOUBLE_KEY = "sk_test_stripe_double"
# Headers that describe one hop, not the request.
_HOP_HEADERS = {"host", "content-length", "connection", "keep-alive", "transfer-encoding"}
# A card localstripe charges successfully (Stripe's test number).
TEST_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


class Localstripe:
    """One HTTP client to the localstripe process."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=30)
        # Customers seen to exist: a meter event asks for every one, and a customer is only
        # deleted through the double (which forgets it then) or by a flush.
        self.known_customers: set[str] = set()

    async def call(self, method: str, path: str, form: forms.Form | None = None) -> Any:
        """A call of the double's own; localstripe's refusal becomes the double's."""
        response = await self.http.request(
            method, path, content=forms.encode(form or {}) if method == "POST" else None,
            headers={"Authorization": f"Bearer {DOUBLE_KEY}",
                     "Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        body = response.json() if response.content else {}
        if response.status_code >= 400:
            error = body.get("error", {})
            raise StripeError(
                response.status_code, error.get("message", "localstripe refused"),
                code=error.get("code"), type=error.get("type", "invalid_request_error"),
            )  # fmt: skip
        return body

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        response = await self.http.get(
            f"/v1/customers/{customer_id}", headers={"Authorization": f"Bearer {DOUBLE_KEY}"}
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return None if found.get("deleted") else found

    async def customer_exists(self, customer_id: str) -> bool:
        if customer_id not in self.known_customers and await self.customer(customer_id):
            self.known_customers.add(customer_id)
        return customer_id in self.known_customers

    async def ensure_payment_method(self, customer: dict[str, Any]) -> None:
        """localstripe invoices a subscription at once and needs a card to charge; a customer
        that already has one (a test's failing card, say) keeps it."""
        settings = customer.get("invoice_settings") or {}
        if settings.get("default_payment_method") or customer.get("default_source"):
            return
        method = await self.call("POST", "/v1/payment_methods", {"type": "card", "card": TEST_CARD})
        await self.call("POST", f"/v1/payment_methods/{method['id']}/attach",
                        {"customer": customer["id"]})  # fmt: skip
        await self.call("POST", f"/v1/customers/{customer['id']}",
                        {"invoice_settings": {"default_payment_method": method["id"]}})  # fmt: skip

    async def forward(self, request: Request) -> Response:
        """Method, path, query, body and headers as they came; the answer as it comes."""
        if request.method == "DELETE" and request.url.path.startswith("/v1/customers/"):
            self.known_customers.discard(request.url.path.removeprefix("/v1/customers/"))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        upstream = await self.http.request(
            request.method, request.url.path, params=request.url.query,
            content=await request.body(), headers=headers,
        )  # fmt: skip
        relayed = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS}
        relayed.pop("content-encoding", None)  # httpx already decoded the body
        return Response(upstream.content, upstream.status_code, headers=relayed)

    async def close(self) -> None:
        await self.http.aclose()
