"""Reading a request's parameters the way Stripe does: known names only, lists paginated."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from tests.billing.stripe_double import forms
from tests.billing.stripe_double.errors import StripeError, invalid, missing
from tests.billing.stripe_double.state import Obj

LIST_PARAMS = {"limit", "starting_after", "ending_before", "expand"}


async def read(request: Request, allowed: set[str]) -> forms.Form:
    """The body of a POST or the query of a GET, refusing names Stripe would not know."""
    raw = (await request.body()).decode() if request.method == "POST" else request.url.query
    form = forms.decode(raw)
    for name in form:
        if name not in allowed | {"expand"}:
            raise StripeError(400, f"Received unknown parameter: {name}",
                              code="parameter_unknown", param=name)  # fmt: skip
    return form


def required(form: forms.Form, name: str) -> Any:
    value = form.get(name)
    if value in (None, ""):
        raise missing(name)
    return value


def boolean(form: forms.Form, name: str) -> bool | None:
    value = form.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise invalid(name, f"Invalid boolean: {value}")
    return bool(value == "true")


def integer(form: forms.Form, name: str) -> int | None:
    value = form.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(name, f"Invalid integer: {value}") from None


def metadata(current: dict[str, str], update: Any) -> dict[str, str]:
    """Stripe merges metadata; an empty value removes its key, an empty string all of them."""
    if update == "":
        return {}
    if not isinstance(update, dict):
        raise invalid("metadata", "Invalid metadata: must be a hash")
    merged = {**current, **update}
    return {k: v for k, v in merged.items() if v != ""}


def page(objects: Iterable[Obj], url: str, form: forms.Form) -> Obj:
    """A Stripe list object, newest first, `limit` (1 to 100, default 10) after `starting_after`."""
    items = list(objects)
    limit = integer(form, "limit") or 10
    if not 1 <= limit <= 100:
        raise invalid("limit", "Limit must be between 1 and 100.")
    after = form.get("starting_after")
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise invalid("starting_after", f"No such object: '{after}'")
        items = items[ids.index(after) + 1 :]
    return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": url}
