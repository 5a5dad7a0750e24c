"""Everything the double remembers, per server process."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from typing import Any

Obj = dict[str, Any]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def now() -> int:
    return int(time.time())


@dataclass
class AcceptedEvent:
    """A meter event the double accepted: what tests assert on."""

    identifier: str
    meter: str
    event_name: str
    customer: str
    value: int
    timestamp: int
    created: int

    def as_json(self) -> Obj:
        return {
            "identifier": self.identifier,
            "meter": self.meter,
            "event_name": self.event_name,
            "customer": self.customer,
            "value": self.value,
            "timestamp": self.timestamp,
            "created": self.created,
        }


@dataclass
class Webhook:
    url: str
    secret: str


@dataclass
class State:
    products: dict[str, Obj] = field(default_factory=dict)
    prices: dict[str, Obj] = field(default_factory=dict)
    meters: dict[str, Obj] = field(default_factory=dict)
    meter_events: list[AcceptedEvent] = field(default_factory=list)
    # Stripe keeps an identifier for a rolling 24 h at least; the double, for its whole life
    identifiers: dict[str, AcceptedEvent] = field(default_factory=dict)
    # each repeat of an identifier, with the value it carried: a sender must never change it
    duplicates: list[Obj] = field(default_factory=list)
    checkout_sessions: dict[str, Obj] = field(default_factory=dict)
    # per session: its line items and subscription_data, which Stripe keeps off the session object
    checkout_orders: dict[str, Obj] = field(default_factory=dict)
    portal_sessions: dict[str, Obj] = field(default_factory=dict)
    events: dict[str, Obj] = field(default_factory=dict)
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    deliveries: list[Obj] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    idempotent: dict[tuple[str, str], tuple[str, int, bytes]] = field(default_factory=dict)
    idempotent_running: set[tuple[str, str]] = field(default_factory=set)

    def clear(self) -> None:
        for each in fields(self):
            setattr(self, each.name, each.default_factory())  # type: ignore[operator]
