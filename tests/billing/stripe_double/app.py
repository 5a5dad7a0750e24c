"""The Stripe test double as one ASGI app: the single `api_base` the SDK is given."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from tests.billing.stripe_double import catalog, checkout, meters, portal
from tests.billing.stripe_double.double import Double, double
from tests.billing.stripe_double.edge import stripe_edge
from tests.billing.stripe_double.errors import StripeError, stripe_error_handler
from tests.billing.stripe_double.faults import Faults
from tests.billing.stripe_double.localstripe import Localstripe
from tests.billing.stripe_double.state import State, Webhook, new_id
from tests.billing.stripe_double.webhooks import Deliveries

UNREGISTERED = "stripe_double.unregistered"  # an event type nothing sends


def create_app(localstripe_url: str) -> FastAPI:
    state = State()
    the = Double(state, Localstripe(localstripe_url), Deliveries(state), Faults())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await the.deliveries.close()
        await the.localstripe.close()

    app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)
    app.state.double = the
    app.add_exception_handler(StripeError, stripe_error_handler)
    app.middleware("http")(stripe_edge)
    for module in (catalog, meters, checkout, portal):
        app.include_router(module.router)
    app.include_router(_test_controls())

    @app.get("/v1/events/{event_id}")
    async def retrieve_event(event_id: str, request: Request) -> Any:
        """The double's own events here; localstripe's are forwarded."""
        event = double(request).state.events.get(event_id)
        return event if event is not None else await double(request).localstripe.forward(request)

    @app.api_route("/{path:path}", methods=["GET", "POST", "DELETE"])
    async def forward(path: str, request: Request) -> Response:
        return await double(request).localstripe.forward(request)

    return app


def _test_controls() -> APIRouter:
    """`/_double/…`: what tests set and read; never part of Stripe's API."""
    router = APIRouter(prefix="/_double")

    @router.post("/faults")
    async def set_faults(request: Request) -> dict[str, Any]:
        settings = await request.json()
        double(request).faults.configure(settings)
        return settings  # type: ignore[no-any-return]

    @router.delete("/faults")
    async def clear_faults(request: Request) -> dict[str, Any]:
        double(request).faults.clear()
        return {}

    @router.get("/meter_events")
    async def accepted_meter_events(request: Request) -> list[dict[str, Any]]:
        return [event.as_json() for event in double(request).state.meter_events]

    @router.get("/duplicate_meter_events")
    async def refused_duplicates(request: Request) -> list[dict[str, Any]]:
        """Every identifier sent again, with the value it carried and the value accepted."""
        return double(request).state.duplicates

    @router.get("/requests")
    async def request_counts(request: Request) -> dict[str, int]:
        return dict(double(request).state.requests)

    @router.get("/webhook_deliveries")
    async def deliveries(request: Request) -> list[dict[str, Any]]:
        return double(request).state.deliveries

    @router.post("/webhooks")
    async def register_webhook(request: Request) -> dict[str, str]:
        """One endpoint for the double's events and localstripe's, with one secret."""
        the = double(request)
        body = await request.json()
        webhook_id = new_id("we")
        await the.localstripe.call("POST", f"/_config/webhooks/{webhook_id}",
                                   {"url": body["url"], "secret": body["secret"]})  # fmt: skip
        the.state.webhooks[webhook_id] = Webhook(body["url"], body["secret"])
        return {"id": webhook_id, "url": body["url"]}

    @router.delete("/data")
    async def flush(request: Request) -> dict[str, Any]:
        """Both servers forget their objects and webhook endpoints."""
        the = double(request)
        await the.localstripe.call("DELETE", "/_config/data")
        for webhook_id, webhook in the.state.webhooks.items():
            # localstripe cannot forget an endpoint; one that wants no event type gets none
            await the.localstripe.call("POST", f"/_config/webhooks/{webhook_id}", {
                "url": webhook.url, "secret": webhook.secret, "events": [UNREGISTERED],
            })  # fmt: skip
        the.state.clear()
        the.localstripe.known_customers.clear()
        the.faults.clear()
        return {}

    return router
