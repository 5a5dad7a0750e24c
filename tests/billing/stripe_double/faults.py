"""Injected failures for chaos tests: a share of calls to some paths answers 429 or 500.

A 500 is of one of two kinds, as with the real Stripe: an internal error before anything
happened (Stripe saves it under the idempotency key and says `Stripe-Should-Retry: false`),
or a lost answer — the request was carried out and only the response never arrived, so a retry
with a new idempotency key meets what the first one did (for a meter event: the duplicate).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

Fault = Literal["rate_limited", "internal_error", "lost_answer"]


@dataclass
class Faults:
    paths: list[str] = field(default_factory=list)
    error_500: float = 0.0
    error_429: float = 0.0
    # of the 500s, the share that come after the request was carried out
    lost_answer_share: float = 0.5
    rng: random.Random = field(default_factory=random.Random)

    def configure(self, settings: dict[str, Any]) -> None:
        """`{"paths": [...], "error_500": 0.1, "error_429": 0.05, "seed": 1}`"""
        self.paths = [str(path) for path in settings.get("paths", [])]
        self.error_500 = float(settings.get("error_500", 0.0))
        self.error_429 = float(settings.get("error_429", 0.0))
        self.lost_answer_share = float(settings.get("lost_answer_share", 0.5))
        self.rng = random.Random(settings.get("seed"))

    def clear(self) -> None:
        self.configure({})

    def draw(self, path: str) -> Fault | None:
        if not any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.paths):
            return None
        roll = self.rng.random()
        if roll < self.error_429:
            return "rate_limited"
        if roll < self.error_429 + self.error_500:
            lost = self.rng.random() < self.lost_answer_share
            return "lost_answer" if lost else "internal_error"
        return None
