"""Checkout Sessions (mode=subscription) and the double's hosted payment page.

Paying creates the subscription in localstripe (one item: localstripe's Subscription takes
exactly one), completes the session, sends a signed `checkout.session.completed` and redirects
to `success_url`. `subscription_data[billing_cycle_anchor]` is checked when the session is made
and passed on (our localstripe honours it, anchored_localstripe.py); paid after the anchor has
passed, the session subscribes from the anchor for a whole period, as Stripe's Checkout does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tests.billing.stripe_double import anchors, forms, params
from tests.billing.stripe_double.double import double
from tests.billing.stripe_double.errors import StripeError, invalid, missing, no_such
from tests.billing.stripe_double.pages import checkout_page
from tests.billing.stripe_double.state import Obj, new_id, now

router = APIRouter()

SESSION_CREATE = {"mode", "customer", "line_items", "success_url", "cancel_url",
                  "client_reference_id", "metadata", "subscription_data", "customer_email",
                  "allow_promotion_codes", "billing_address_collection", "locale",
                  "payment_method_types", "automatic_tax", "customer_update"}  # fmt: skip
SUBSCRIPTION_DATA = {"metadata", "billing_cycle_anchor", "proration_behavior"}
SESSION_LIFETIME_S = 24 * 3600


@router.post("/v1/checkout/sessions")
async def create_session(request: Request) -> Obj:
    the = double(request)
    form = await params.read(request, SESSION_CREATE)
    if params.required(form, "mode") != "subscription":
        raise invalid("mode", "The Stripe double serves mode=subscription only.")
    customer = params.required(form, "customer")
    if await the.localstripe.customer(customer) is None:
        raise no_such("customer", customer, "customer")
    lines = _line_items(request, form.get("line_items"))
    session_id = new_id("cs_test")
    created = now()
    order = _order(lines, form.get("subscription_data") or {}, created)
    session: Obj = {
        "id": session_id, "object": "checkout.session", "mode": "subscription",
        "status": "open", "payment_status": "unpaid", "customer": customer,
        "customer_email": form.get("customer_email"), "customer_details": None,
        "client_reference_id": form.get("client_reference_id"),
        "metadata": params.metadata({}, form.get("metadata", {})),
        "success_url": params.required(form, "success_url"), "cancel_url": form.get("cancel_url"),
        "url": f"{str(request.base_url).rstrip('/')}/checkout/pay/{session_id}",
        "subscription": None, "invoice": None, "payment_intent": None, "setup_intent": None,
        "currency": lines[0]["price"]["currency"],
        "amount_subtotal": _total(order, created), "amount_total": _total(order, created),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "created": created, "expires_at": created + SESSION_LIFETIME_S, "livemode": False,
        "locale": form.get("locale"), "ui_mode": "hosted", "payment_method_types": ["card"],
        "allow_promotion_codes": params.boolean(form, "allow_promotion_codes"),
    }  # fmt: skip
    the.state.checkout_sessions[session_id] = session
    the.state.checkout_orders[session_id] = order
    return session


def _order(lines: list[Obj], data: Any, at: int) -> Obj:
    """What paying subscribes to: the lines and `subscription_data`, checked as Stripe does."""
    if not isinstance(data, dict):
        raise invalid("subscription_data", "Invalid subscription_data: must be a hash")
    for name in data:
        if name not in SUBSCRIPTION_DATA:
            param = f"subscription_data[{name}]"
            raise StripeError(400, f"Received unknown parameter: {param}",
                              code="parameter_unknown", param=param)  # fmt: skip
    anchor = data.get("billing_cycle_anchor")
    behavior = data.get("proration_behavior", "create_prorations")
    if behavior not in anchors.PRORATION_BEHAVIORS:
        raise invalid("subscription_data[proration_behavior]",
                      f"Invalid subscription_data[proration_behavior]: must be one of "
                      f"{' or '.join(anchors.PRORATION_BEHAVIORS)}")  # fmt: skip
    if anchor is not None:
        try:
            anchor = int(anchor)
        except (TypeError, ValueError):
            raise invalid("subscription_data[billing_cycle_anchor]",
                          f"Invalid integer: {anchor}") from None  # fmt: skip
        recurring = _subscribed_line(lines)["price"]["recurring"]
        why = anchors.refusal(anchor, at, recurring["interval"], recurring["interval_count"])
        if why is not None:
            raise invalid("subscription_data[billing_cycle_anchor]", why)
    return {"lines": lines, "subscription_metadata": data.get("metadata", {}),
            "billing_cycle_anchor": anchor, "proration_behavior": behavior}  # fmt: skip


@router.get("/v1/checkout/sessions")
async def list_sessions(request: Request) -> Obj:
    form = await params.read(request, params.LIST_PARAMS | {"customer", "status"})
    sessions = [
        session for session in reversed(double(request).state.checkout_sessions.values())
        if form.get("customer") in (None, session["customer"])
        and form.get("status") in (None, session["status"])
    ]  # fmt: skip
    return params.page(sessions, "/v1/checkout/sessions", form)


@router.post("/v1/checkout/sessions/{session_id}/expire")
async def expire_session(session_id: str, request: Request) -> Obj:
    """As Stripe: only an open session expires; a paid one answers 400."""
    session = _session(request, session_id)
    order = double(request).state.checkout_orders[session_id]
    if session["status"] != "open" or order.get("paying"):
        state = "being paid" if order.get("paying") else session["status"]
        message = f"Only open sessions can be expired; this one is {state}."
        raise StripeError(400, message, code="checkout_session_not_open")
    session.update(status="expired")
    return session


@router.get("/v1/checkout/sessions/{session_id}")
async def retrieve_session(session_id: str, request: Request) -> Obj:
    return _session(request, session_id)


@router.get("/v1/checkout/sessions/{session_id}/line_items")
async def list_line_items(session_id: str, request: Request) -> Obj:
    _session(request, session_id)
    form = await params.read(request, params.LIST_PARAMS)
    order = double(request).state.checkout_orders[session_id]
    items = [
        {"id": f"li_{session_id[-12:]}_{i}", "object": "item", "price": line["price"],
         "quantity": line["quantity"], "currency": line["price"]["currency"],
          "amount_subtotal": _line_total(line, order, now()),
         "amount_total": _line_total(line, order, now()),
         "description": line["price"]["nickname"] or line["price"]["product"]}
        for i, line in enumerate(order["lines"])
    ]  # fmt: skip
    return params.page(items, f"/v1/checkout/sessions/{session_id}/line_items", form)


@router.get("/checkout/pay/{session_id}", response_class=HTMLResponse)
async def hosted_page(session_id: str, request: Request) -> HTMLResponse:
    session = _session(request, session_id)
    return HTMLResponse(checkout_page(session, _described(request, session_id)))


@router.post("/checkout/pay/{session_id}")
async def hosted_page_submit(session_id: str, request: Request) -> Response:
    session = _session(request, session_id)
    action = forms.decode((await request.body()).decode()).get("action")
    if action == "cancel":
        return RedirectResponse(session["cancel_url"] or session["success_url"], status_code=303)
    try:
        await complete(request, session_id)
    except StripeError as refused:
        page = checkout_page(session, _described(request, session_id), refused.body["message"])
        return HTMLResponse(page, status_code=refused.status)
    url = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
    return RedirectResponse(url, status_code=303)


@router.post("/_double/checkout/{session_id}/pay")
async def pay_without_browser(session_id: str, request: Request) -> Obj:
    """What the Pay button does, for tests that drive no browser."""
    return await complete(request, session_id)


async def complete(request: Request, session_id: str) -> Obj:
    the = double(request)
    session = _session(request, session_id)
    order = the.state.checkout_orders[session_id]
    if session["status"] != "open" or order.get("paying"):  # a second click while paying
        state = "being paid" if order.get("paying") else session["status"]
        raise StripeError(400, f"The session is {state}.", code="checkout_session_not_open")
    order["paying"] = True
    try:
        subscription = await _subscribe(request, session, order)
    finally:
        order["paying"] = False
    session.update(status="complete", payment_status="paid", subscription=subscription["id"],
                   invoice=subscription.get("latest_invoice"))  # fmt: skip
    the.deliveries.emit("checkout.session.completed", dict(session))
    return session


async def _subscribe(request: Request, session: Obj, order: Obj) -> Obj:
    localstripe = double(request).localstripe
    customer = await localstripe.customer(session["customer"])
    if customer is None:
        raise no_such("customer", session["customer"], "customer")
    await localstripe.ensure_payment_method(customer)
    line = _subscribed_line(order["lines"])
    item: dict[str, Any] = {"plan": line["price"]["id"]}
    if line["quantity"] is not None:
        item["quantity"] = line["quantity"]
    subscribe: Obj = {"customer": session["customer"], "items": [item],
                      "metadata": order["subscription_metadata"]}  # fmt: skip
    anchor = order["billing_cycle_anchor"]
    if anchor is not None and anchor > now():
        subscribe.update(billing_cycle_anchor=anchor,
                         proration_behavior=order["proration_behavior"])  # fmt: skip
    elif anchor is not None:  # paid after the anchor: a whole period from it, at full price
        subscribe["backdate_start_date"] = anchor
    subscription: Obj = await localstripe.call("POST", "/v1/subscriptions", subscribe)
    if subscription["status"] not in ("active", "trialing"):
        # Stripe's page keeps the session open on a declined card and makes no subscription.
        await localstripe.call("DELETE", f"/v1/subscriptions/{subscription['id']}")
        raise StripeError(402, "Your card was declined.", code="card_declined", type="card_error")
    return subscription


def _subscribed_line(lines: list[Obj]) -> Obj:
    """The one line localstripe's subscription gets: the licensed one, else the first."""
    licensed = [line for line in lines if line["price"]["recurring"]["usage_type"] == "licensed"]
    if len(licensed) > 1:
        raise StripeError(400, "The Stripe double subscribes to one licensed price only.",
                          param="line_items")  # fmt: skip
    return (licensed or lines)[0]


def _line_items(request: Request, raw: object) -> list[Obj]:
    if not isinstance(raw, list) or not raw:
        raise missing("line_items")
    lines: list[Obj] = []
    for i, item in enumerate(raw):
        param = f"line_items[{i}]"
        price_id = item.get("price") if isinstance(item, dict) else None
        if not price_id:
            raise missing(f"{param}[price]")
        price = double(request).state.prices.get(price_id)
        if price is None:
            raise no_such("price", price_id, f"{param}[price]")
        if not price["active"]:
            raise invalid(f"{param}[price]", f"The price `{price_id}` is not active.")
        if price["recurring"] is None:
            raise invalid(f"{param}[price]", "mode=subscription needs recurring prices.")
        metered = price["recurring"]["usage_type"] == "metered"
        quantity = item.get("quantity")
        if metered and quantity is not None:
            raise invalid(
                f"{param}[quantity]",
                "Quantity should not be specified where usage_type is `metered`.",
            )
        if not metered and quantity is None:
            raise missing(f"{param}[quantity]")
        lines.append({"price": price, "quantity": None if metered else int(quantity)})
    if len({line["price"]["currency"] for line in lines}) > 1:
        raise invalid("line_items", "All prices must be in the same currency.")
    return lines


def _line_total(line: Obj, order: Obj, at: int) -> int:
    """What the first invoice charges for the line if paid at `at`: prorated up to a future
    anchor (nothing with proration_behavior=none), else the whole price."""
    whole = int(line["price"]["unit_amount"] or 0) * (line["quantity"] or 0)
    anchor = order["billing_cycle_anchor"]
    if anchor is None or anchor <= at:
        return whole
    if order["proration_behavior"] == "none":
        return 0
    recurring = line["price"]["recurring"]
    return anchors.prorated(whole, at, anchor, recurring["interval"], recurring["interval_count"])


def _total(order: Obj, at: int) -> int:
    return sum(_line_total(line, order, at) for line in order["lines"])


def _described(request: Request, session_id: str) -> list[Obj]:
    order = double(request).state.checkout_orders[session_id]
    return [{"description": line["price"]["nickname"] or line["price"]["product"],
             "amount": "metered" if line["quantity"] is None
             else f"{_line_total(line, order, now()) / 100:.2f} "
                  f"{line['price']['currency'].upper()}"}
            for line in order["lines"]]  # fmt: skip


def _session(request: Request, session_id: str) -> Obj:
    session = double(request).state.checkout_sessions.get(session_id)
    if session is None:
        raise no_such("checkout.session", session_id)
    return session
