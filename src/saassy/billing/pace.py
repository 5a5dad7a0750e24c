"""How fast the meter-event sender may call Stripe: a rate that halves on every 429 and
creeps back on success, a pause for Stripe's Retry-After, and a bound on calls in flight.

Stripe allows 1,000 meter events per second in live mode (fewer in test mode); the sender
starts just under it and lets Stripe's 429s say where the real limit is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

STRIPE_EVENTS_PER_S = 1000
START_PER_S = 900.0
MIN_PER_S = 5.0
RECOVERY = 1.02  # per accepted call: from 5/s back to 900/s in about 260 calls


class Pace:
    def __init__(self, per_s: float = START_PER_S, in_flight: int = 32) -> None:
        self.max_per_s = per_s
        self.per_s = per_s
        self._slots = asyncio.Semaphore(in_flight)
        self._next_at = 0.0
        self._resume_at = 0.0

    @asynccontextmanager
    async def call(self) -> AsyncIterator[None]:
        """Wait for a slot and a turn, then hold the slot while the call runs."""
        async with self._slots:
            now = time.monotonic()
            turn = max(now, self._next_at, self._resume_at)
            self._next_at = turn + 1 / self.per_s
            if turn > now:
                await asyncio.sleep(turn - now)
            yield

    def accepted(self) -> None:
        self.per_s = min(self.max_per_s, self.per_s * RECOVERY)

    def rate_limited(self, retry_after_s: float) -> None:
        """Stripe said slow down: every call waits `retry_after_s`, then goes at half the rate."""
        self.per_s = max(MIN_PER_S, self.per_s / 2)
        self._resume_at = max(self._resume_at, time.monotonic() + retry_after_s)
