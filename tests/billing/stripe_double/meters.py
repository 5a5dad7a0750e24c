"""Billing Meters, meter events under Stripe's documented rules, and event summaries."""

from __future__ import annotations

import hashlib
import itertools
import re

from fastapi import APIRouter
from starlette.requests import Request

from tests.billing.stripe_double import forms, params
from tests.billing.stripe_double.double import double
from tests.billing.stripe_double.errors import StripeError, invalid, missing, no_such
from tests.billing.stripe_double.state import AcceptedEvent, Obj, new_id, now

router = APIRouter()

PAST_LIMIT_S = 35 * 24 * 3600  # "within the past 35 calendar days"
FUTURE_LIMIT_S = 5 * 60  # "up to 5 minutes in the future"
MAX_DIGITS = 15  # significant digits of a value (API 2026-04-22.dahlia)
MAX_IDENTIFIER = 100
_WHOLE = re.compile(r"^-?\d+$")
WINDOWS = {"hour": 3600, "day": 86400}
METER_CREATE = {"display_name", "event_name", "default_aggregation", "customer_mapping",
                "value_settings", "event_time_window"}  # fmt: skip


def meter_event_error(message: str, code: str, param: str) -> StripeError:
    return StripeError(400, message, code=code, param=param)


@router.post("/v1/billing/meters")
async def create_meter(request: Request) -> Obj:
    state = double(request).state
    form = await params.read(request, METER_CREATE)
    event_name = params.required(form, "event_name")
    formula = (form.get("default_aggregation") or {}).get("formula")
    if formula not in ("sum", "count", "last"):
        raise invalid("default_aggregation[formula]", f"Invalid formula: {formula}")
    if any(
        m["event_name"] == event_name and m["status"] == "active" for m in state.meters.values()
    ):
        raise invalid(
            "event_name", f"An active meter with event_name `{event_name}` already exists."
        )
    mapping = form.get("customer_mapping") or {}
    if mapping.get("type", "by_id") != "by_id":
        raise invalid("customer_mapping[type]", "Only `by_id` is supported.")
    meter: Obj = {
        "id": new_id("mtr"), "object": "billing.meter", "created": now(), "updated": now(),
        "customer_mapping": {
            "event_payload_key": mapping.get("event_payload_key", "stripe_customer_id"),
            "type": "by_id",
        },
        "default_aggregation": {"formula": formula},
        "display_name": params.required(form, "display_name"), "event_name": event_name,
        "event_time_window": form.get("event_time_window"), "livemode": False, "status": "active",
        "status_transitions": {"deactivated_at": None},
        "value_settings": {"event_payload_key": (form.get("value_settings") or {}).get(
            "event_payload_key", "value")},
    }  # fmt: skip
    state.meters[meter["id"]] = meter
    return meter


@router.get("/v1/billing/meters/{meter_id}")
async def retrieve_meter(meter_id: str, request: Request) -> Obj:
    return _meter(request, meter_id)


@router.post("/v1/billing/meters/{meter_id}")
async def update_meter(meter_id: str, request: Request) -> Obj:
    meter = _meter(request, meter_id)
    form = await params.read(request, {"display_name"})
    meter["display_name"] = params.required(form, "display_name")
    meter["updated"] = now()
    return meter


@router.post("/v1/billing/meters/{meter_id}/deactivate")
async def deactivate_meter(meter_id: str, request: Request) -> Obj:
    meter = _meter(request, meter_id)
    await params.read(request, set())
    meter["status"], meter["updated"] = "inactive", now()
    meter["status_transitions"]["deactivated_at"] = now()
    return meter


@router.post("/v1/billing/meters/{meter_id}/reactivate")
async def reactivate_meter(meter_id: str, request: Request) -> Obj:
    meter = _meter(request, meter_id)
    await params.read(request, set())
    meter["status"], meter["updated"] = "active", now()
    return meter


@router.get("/v1/billing/meters")
async def list_meters(request: Request) -> Obj:
    form = await params.read(request, params.LIST_PARAMS | {"status"})
    found = [m for m in reversed(double(request).state.meters.values())
             if form.get("status") in (None, m["status"])]  # fmt: skip
    return params.page(found, "/v1/billing/meters", form)


@router.post("/v1/billing/meter_events")
async def create_meter_event(request: Request) -> Obj:
    """Accepts one event, refusing as Stripe documents; the checks run cheapest first."""
    the = double(request)
    form = await params.read(request, {"event_name", "payload", "identifier", "timestamp"})
    event_name = params.required(form, "event_name")
    payload = params.required(form, "payload")
    if not isinstance(payload, dict):
        raise invalid("payload", "Invalid hash")
    identifier = form.get("identifier") or new_id("mev")
    if len(identifier) > MAX_IDENTIFIER:
        raise invalid("identifier", f"identifier is longer than {MAX_IDENTIFIER} characters.")
    meter = _meter_for(request, event_name)
    customer = payload.get(meter["customer_mapping"]["event_payload_key"])
    if not customer:
        raise meter_event_error("The payload has no customer.", "meter_event_no_customer_defined",
                                "payload")  # fmt: skip
    value = _value(payload.get(meter["value_settings"]["event_payload_key"]))
    timestamp = _timestamp(form)
    if not await the.localstripe.customer_exists(customer):
        raise meter_event_error(f"No such customer: '{customer}'", "meter_event_customer_not_found",
                                "payload")  # fmt: skip
    if identifier in the.state.identifiers:
        first = the.state.identifiers[identifier]
        the.state.duplicates.append(
            {"identifier": identifier, "value": value, "accepted_value": first.value}
        )
        raise meter_event_error(
            f"An event already exists with identifier {identifier}.", "duplicate_meter_event",
            "identifier",
        )  # fmt: skip
    created = now()
    accepted = AcceptedEvent(
        identifier, meter["id"], event_name, customer, value, timestamp, created
    )
    the.state.identifiers[identifier] = accepted
    the.state.meter_events.append(accepted)
    return {"object": "billing.meter_event", "created": created, "event_name": event_name,
            "identifier": identifier, "livemode": False, "payload": payload,
            "timestamp": timestamp}  # fmt: skip


@router.get("/v1/billing/meters/{meter_id}/event_summaries")
async def list_event_summaries(meter_id: str, request: Request) -> Obj:
    meter = _meter(request, meter_id)
    form = await params.read(request, params.LIST_PARAMS | {"customer", "start_time", "end_time",
                                                             "value_grouping_window"})  # fmt: skip
    customer = params.required(form, "customer")
    start, end = _aligned(form, "start_time"), _aligned(form, "end_time")
    if start >= end:
        raise invalid("start_time", "start_time must be before end_time.")
    window = form.get("value_grouping_window")
    if window is not None and window not in WINDOWS:
        raise invalid("value_grouping_window", f"Invalid value_grouping_window: {window}")
    events = [
        e for e in double(request).state.meter_events
        if e.meter == meter_id and e.customer == customer and start <= e.timestamp < end
    ]  # fmt: skip
    summaries = []
    for lo, hi in _windows(start, end, window):
        inside = [e for e in events if lo <= e.timestamp < hi]
        if inside or window is None:  # grouped, Stripe lists only the windows that saw events
            summaries.append(_summary(meter, customer, lo, hi, inside))
    summaries.reverse()  # newest first, as every Stripe list
    return params.page(summaries, f"/v1/billing/meters/{meter_id}/event_summaries", form)


def _meter(request: Request, meter_id: str) -> Obj:
    meter = double(request).state.meters.get(meter_id)
    if meter is None:
        raise no_such("billing meter", meter_id)
    return meter


def _meter_for(request: Request, event_name: str) -> Obj:
    meters = [m for m in double(request).state.meters.values() if m["event_name"] == event_name]
    active = [m for m in meters if m["status"] == "active"]
    if active:
        return active[0]
    if meters:
        raise meter_event_error(f"The meter for `{event_name}` is inactive.", "archived_meter",
                                "event_name")  # fmt: skip
    raise meter_event_error(f"No active meter has event_name `{event_name}`.", "no_meter",
                            "event_name")  # fmt: skip


def _value(raw: object) -> int:
    """Stripe's guide: the value "only accepts whole number values" (negative ones too)."""
    if not isinstance(raw, str) or not _WHOLE.match(raw):
        raise meter_event_error(f"The value must be a whole number, got {raw!r}.",
                                "meter_event_invalid_value", "payload")  # fmt: skip
    if len(raw.lstrip("-").lstrip("0")) > MAX_DIGITS:
        raise meter_event_error(
            f"The value in the event payload can have at most {MAX_DIGITS} digits. Received {raw}.",
            "meter_event_value_too_many_digits", "payload",
        )  # fmt: skip
    return int(raw)


def _timestamp(form: forms.Form) -> int:
    timestamp = params.integer(form, "timestamp")
    current = now()
    if timestamp is None:
        return current
    if timestamp < current - PAST_LIMIT_S:
        raise meter_event_error("The timestamp is more than 35 days in the past.",
                                "timestamp_too_far_in_past", "timestamp")  # fmt: skip
    if timestamp > current + FUTURE_LIMIT_S:
        raise meter_event_error("The timestamp is more than 5 minutes in the future.",
                                "timestamp_in_future", "timestamp")  # fmt: skip
    return timestamp


def _aligned(form: forms.Form, name: str) -> int:
    value = params.integer(form, name)
    if value is None:
        raise missing(name)
    if value % 60:
        raise invalid(name, f"{name} must be aligned with minute boundaries.")
    return value


def _windows(start: int, end: int, window: str | None) -> list[tuple[int, int]]:
    """[start, end) cut at UTC hour or day boundaries (the first and last clipped)."""
    if window is None:
        return [(start, end)]
    size = WINDOWS[window]
    cuts = [start, *range(start - start % size + size, end, size), end]
    return list(itertools.pairwise(cuts))


def _summary(meter: Obj, customer: str, start: int, end: int, events: list[AcceptedEvent]) -> Obj:
    formula = meter["default_aggregation"]["formula"]
    if formula == "count":
        value = len(events)
    elif formula == "last":
        value = max(events, key=lambda e: (e.timestamp, e.created)).value if events else 0
    else:
        value = sum(e.value for e in events)
    key = f"{meter['id']}:{customer}:{start}:{end}".encode()
    return {"id": "mtrusg_" + hashlib.sha256(key).hexdigest()[:24],
            "object": "billing.meter_event_summary", "aggregated_value": value,
            "end_time": end, "livemode": False, "meter": meter["id"],
            "start_time": start}  # fmt: skip
