"""Events the double raises, signed with Stripe's scheme and sent to every registered endpoint."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from typing import Any

import httpx

from tests.billing.stripe_double.state import Obj, State, Webhook, new_id, now

API_VERSION = "2026-10-28.endive"  # the version stripe 16.1.0 pins


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """`t=…,v1=HMAC-SHA256(secret, "t.payload")`, as Stripe signs."""
    signed = f"{timestamp}.".encode() + payload
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


class Deliveries:
    """Sends events in the background, as Stripe does, remembering every attempt."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.pending: set[asyncio.Task[None]] = set()
        self.http = httpx.AsyncClient(timeout=10)

    def emit(self, event_type: str, obj: Obj, request_key: str | None = None) -> Obj:
        event: Obj = {
            "id": new_id("evt"), "object": "event", "api_version": API_VERSION,
            "created": now(), "data": {"object": obj}, "livemode": False,
            "pending_webhooks": len(self.state.webhooks),
            "request": {"id": None, "idempotency_key": request_key}, "type": event_type,
        }  # fmt: skip
        self.state.events[event["id"]] = event
        for webhook in list(self.state.webhooks.values()):
            task = asyncio.create_task(self._deliver(event, webhook))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)
        return event

    async def _deliver(self, event: Obj, webhook: Webhook) -> None:
        payload = json.dumps(event, indent=2).encode()
        timestamp = now()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": signature_header(payload, webhook.secret, timestamp),
        }
        attempt: dict[str, Any] = {"event": event["id"], "type": event["type"], "url": webhook.url}
        try:
            response = await self.http.post(webhook.url, content=payload, headers=headers)
            attempt["status"] = response.status_code
        except httpx.HTTPError as exc:
            attempt["error"] = repr(exc)
        self.state.deliveries.append(attempt)

    async def close(self) -> None:
        await asyncio.gather(*self.pending, return_exceptions=True)
        await self.http.aclose()
