"""Products and Prices: served here, mirrored into localstripe as Product and Plan (same ids),
because localstripe's Subscription only takes `items[][plan]` and checks the plan's product."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from fastapi import APIRouter
from starlette.requests import Request

from tests.billing.stripe_double import forms, params
from tests.billing.stripe_double.double import double
from tests.billing.stripe_double.errors import StripeError, invalid, no_such
from tests.billing.stripe_double.state import Obj, new_id, now

router = APIRouter()

PRODUCT_CREATE = {"id", "name", "active", "description", "metadata", "tax_code", "unit_label",
                  "statement_descriptor", "url", "images", "marketing_features"}  # fmt: skip
PRODUCT_UPDATE = PRODUCT_CREATE - {"id"} | {"default_price"}
PRICE_CREATE = {"product", "currency", "unit_amount", "unit_amount_decimal", "recurring",
                "lookup_key", "transfer_lookup_key", "metadata", "nickname", "active",
                "tax_behavior", "billing_scheme"}  # fmt: skip
# Stripe Prices are immutable but for these.
PRICE_UPDATE = {"active", "metadata", "lookup_key", "nickname", "transfer_lookup_key",
                "tax_behavior"}  # fmt: skip
_DECIMAL = re.compile(r"^\d+(\.\d{1,12})?$")


@router.post("/v1/products")
async def create_product(request: Request) -> Obj:
    the = double(request)
    form = await params.read(request, PRODUCT_CREATE)
    product_id = form.get("id") or new_id("prod")
    if product_id in the.state.products:
        raise StripeError(
            400, "Product already exists.", code="resource_already_exists", param="id"
        )
    product: Obj = {
        "id": product_id, "object": "product",
        "active": params.boolean(form, "active") is not False,
        "created": now(), "updated": now(), "default_price": None,
        "description": form.get("description"), "images": form.get("images") or [],
        "livemode": False, "marketing_features": form.get("marketing_features") or [],
        "metadata": params.metadata({}, form.get("metadata", {})),
        "name": params.required(form, "name"), "package_dimensions": None, "shippable": None,
        "statement_descriptor": form.get("statement_descriptor"), "tax_code": form.get("tax_code"),
        "type": "service", "unit_label": form.get("unit_label"), "url": form.get("url"),
    }  # fmt: skip
    await the.localstripe.call("POST", "/v1/products", {"id": product_id, "name": product["name"]})
    the.state.products[product_id] = product
    return product


@router.get("/v1/products/{product_id}")
async def retrieve_product(product_id: str, request: Request) -> Obj:
    return _product(request, product_id)


@router.post("/v1/products/{product_id}")
async def update_product(product_id: str, request: Request) -> Obj:
    product = _product(request, product_id)
    form = await params.read(request, PRODUCT_UPDATE)
    if "active" in form:
        product["active"] = params.boolean(form, "active")
    if "metadata" in form:
        product["metadata"] = params.metadata(product["metadata"], form["metadata"])
    if "default_price" in form:
        _price(request, form["default_price"], param="default_price")
    for name in PRODUCT_UPDATE - {"active", "metadata"}:
        if name in form:
            product[name] = form[name] or None
    product["updated"] = now()
    return product


@router.get("/v1/products")
async def list_products(request: Request) -> Obj:
    form = await params.read(request, params.LIST_PARAMS | {"active", "ids"})
    active = params.boolean(form, "active")
    ids = form.get("ids")
    found = [
        p for p in reversed(double(request).state.products.values())
        if (active is None or p["active"] is active) and (ids is None or p["id"] in ids)
    ]  # fmt: skip
    return params.page(found, "/v1/products", form)


@router.post("/v1/prices")
async def create_price(request: Request) -> Obj:
    the = double(request)
    form = await params.read(request, PRICE_CREATE)
    product = _product(request, params.required(form, "product"), param="product")
    currency = str(params.required(form, "currency")).lower()
    unit_amount, unit_amount_decimal = _amount(form)
    recurring = _recurring(request, form.get("recurring"))
    price: Obj = {
        "id": new_id("price"), "object": "price",
        "active": params.boolean(form, "active") is not False,
        "billing_scheme": "per_unit", "created": now(), "currency": currency,
        "custom_unit_amount": None, "livemode": False, "lookup_key": None,
        "metadata": params.metadata({}, form.get("metadata", {})), "nickname": form.get("nickname"),
        "product": product["id"], "recurring": recurring,
        "tax_behavior": form.get("tax_behavior", "unspecified"), "tiers_mode": None,
        "transform_quantity": None, "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount, "unit_amount_decimal": unit_amount_decimal,
    }  # fmt: skip
    _take_lookup_key(request, price, form)
    if recurring:
        await the.localstripe.call("POST", "/v1/plans", _plan(price))
    the.state.prices[price["id"]] = price
    return price


@router.get("/v1/prices/{price_id}")
async def retrieve_price(price_id: str, request: Request) -> Obj:
    return _price(request, price_id)


@router.post("/v1/prices/{price_id}")
async def update_price(price_id: str, request: Request) -> Obj:
    price = _price(request, price_id)
    form = await params.read(request, PRICE_UPDATE)
    if "active" in form:
        price["active"] = params.boolean(form, "active")
    if "metadata" in form:
        price["metadata"] = params.metadata(price["metadata"], form["metadata"])
    if "nickname" in form:
        price["nickname"] = form["nickname"] or None
    if "tax_behavior" in form:
        price["tax_behavior"] = form["tax_behavior"]
    if "lookup_key" in form:
        _take_lookup_key(request, price, form)
    return price


@router.get("/v1/prices")
async def list_prices(request: Request) -> Obj:
    form = await params.read(request, params.LIST_PARAMS | {"active", "product", "lookup_keys",
                                                             "type", "currency"})  # fmt: skip
    active = params.boolean(form, "active")
    keys = form.get("lookup_keys")
    if isinstance(keys, str):
        raise invalid("lookup_keys", "Invalid array")

    def matches(price: Obj) -> bool:
        return (
            (active is None or price["active"] is active)
            and form.get("product") in (None, price["product"])
            and form.get("type") in (None, price["type"])
            and form.get("currency") in (None, price["currency"])
            and (keys is None or price["lookup_key"] in keys)
        )

    found = [p for p in reversed(double(request).state.prices.values()) if matches(p)]
    return params.page(found, "/v1/prices", form)


def _product(request: Request, product_id: str, param: str = "id") -> Obj:
    product = double(request).state.products.get(product_id)
    if product is None:
        raise no_such("product", product_id, param)
    return product


def _price(request: Request, price_id: str, param: str = "id") -> Obj:
    price = double(request).state.prices.get(price_id)
    if price is None:
        raise no_such("price", price_id, param)
    return price


def _amount(form: forms.Form) -> tuple[int | None, str]:
    if "unit_amount" in form and "unit_amount_decimal" in form:
        raise invalid(
            "unit_amount", "You may only specify one of unit_amount and unit_amount_decimal."
        )
    if "unit_amount" in form:
        amount = params.integer(form, "unit_amount")
        if amount is None or amount < 0:
            raise invalid("unit_amount", "unit_amount must be a non-negative integer.")
        return amount, str(amount)
    raw = params.required(form, "unit_amount_decimal")
    if not isinstance(raw, str) or not _DECIMAL.match(raw):
        raise invalid("unit_amount_decimal", f"Invalid decimal: {raw}")
    try:
        value = Decimal(raw).normalize()
    except InvalidOperation:
        raise invalid("unit_amount_decimal", f"Invalid decimal: {raw}") from None
    whole = value == value.to_integral_value()
    return (int(value) if whole else None), format(value, "f")


def _recurring(request: Request, recurring: object) -> Obj | None:
    if recurring is None:
        return None
    if not isinstance(recurring, dict):
        raise invalid("recurring", "Invalid hash")
    interval = recurring.get("interval")
    if interval not in ("day", "week", "month", "year"):
        raise invalid("recurring[interval]", f"Invalid interval: {interval}")
    usage_type = recurring.get("usage_type", "licensed")
    if usage_type not in ("licensed", "metered"):
        raise invalid("recurring[usage_type]", f"Invalid usage_type: {usage_type}")
    meter = recurring.get("meter")
    if usage_type == "metered" and meter is None:
        raise invalid(
            "recurring[meter]", "A meter is required for a price with usage_type=metered."
        )
    if meter is not None:
        if usage_type != "metered":
            raise invalid("recurring[meter]", "Only a metered price can have a meter.")
        if meter not in double(request).state.meters:
            raise no_such("billing meter", meter, "recurring[meter]")
    count = int(recurring.get("interval_count", 1))
    return {"interval": interval, "interval_count": count, "meter": meter,
            "trial_period_days": None, "usage_type": usage_type}  # fmt: skip


def _take_lookup_key(request: Request, price: Obj, form: forms.Form) -> None:
    key = form.get("lookup_key")
    if not key:
        price["lookup_key"] = None
        return
    holder = next((p for p in double(request).state.prices.values()
                   if p["lookup_key"] == key and p["id"] != price["id"]), None)  # fmt: skip
    if holder is not None:
        if params.boolean(form, "transfer_lookup_key") is not True:
            raise invalid("lookup_key", f"A price (`{holder['id']}`) already uses that lookup key.")
        holder["lookup_key"] = None
    price["lookup_key"] = key


def _plan(price: Obj) -> Obj:
    """localstripe's Plan for a recurring Price; it takes whole amounts only."""
    recurring = price["recurring"]
    return {
        "id": price["id"], "product": price["product"], "currency": price["currency"],
        "amount": round(Decimal(price["unit_amount_decimal"])), "interval": recurring["interval"],
        "interval_count": recurring["interval_count"], "usage_type": recurring["usage_type"],
        "nickname": price["nickname"],
    }  # fmt: skip
