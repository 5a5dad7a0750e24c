"""How `StripeCatalogObject.key` names what `saassy billing sync` made for the catalog."""

from __future__ import annotations

from saassy.billing.meters import MeterKey

MONTH = "month"


def product_key(plan: str) -> str:
    return f"plan:{plan}"


def monthly_price_key(plan: str) -> str:
    return f"price:{plan}:{MONTH}"


def metered_price_key(plan: str, meter: MeterKey) -> str:
    return f"price:{plan}:{meter.value}"


def meter_key(meter: MeterKey) -> str:
    return f"meter:{meter.value}"


def plan_of_price_key(key: str) -> str | None:
    """The plan a flat monthly Price was made for (`price:pro:month` -> `pro`)."""
    parts = key.split(":")
    if len(parts) == 3 and parts[0] == "price" and parts[2] == MONTH:
        return parts[1]
    return None


def lookup_key(plan: str, what: str) -> str:
    return f"saassy_{plan}_{what}"
