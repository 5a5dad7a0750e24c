"""Billing portal sessions: a page of the double listing the customer's subscriptions."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse

from tests.billing.stripe_double import params
from tests.billing.stripe_double.double import double
from tests.billing.stripe_double.errors import no_such
from tests.billing.stripe_double.pages import portal_page
from tests.billing.stripe_double.state import Obj, new_id, now

router = APIRouter()


@router.post("/v1/billing_portal/sessions")
async def create_portal_session(request: Request) -> Obj:
    the = double(request)
    form = await params.read(request, {"customer", "return_url", "configuration", "locale",
                                       "flow_data", "on_behalf_of"})  # fmt: skip
    customer = params.required(form, "customer")
    if await the.localstripe.customer(customer) is None:
        raise no_such("customer", customer, "customer")
    session_id = new_id("bps")
    session: Obj = {
        "id": session_id, "object": "billing_portal.session",
        "configuration": form.get("configuration") or "bpc_stripe_double", "created": now(),
        "customer": customer, "customer_account": None, "flow": None, "livemode": False,
        "locale": form.get("locale"), "on_behalf_of": form.get("on_behalf_of"),
        "return_url": form.get("return_url"),
        "url": f"{str(request.base_url).rstrip('/')}/billing_portal/{session_id}",
    }  # fmt: skip
    the.state.portal_sessions[session_id] = session
    return session


@router.get("/billing_portal/{session_id}", response_class=HTMLResponse)
async def portal(session_id: str, request: Request) -> HTMLResponse:
    the = double(request)
    session = the.state.portal_sessions.get(session_id)
    if session is None:
        raise no_such("billing_portal.session", session_id)
    listed = await the.localstripe.call("GET", f"/v1/subscriptions?customer={session['customer']}")
    return HTMLResponse(portal_page(session, listed.get("data", [])))
