"""How fast the meter-event sender may call Stripe: a rate that halves on a 429 and creeps
back on success, a pause after a 429 (Stripe's Retry-After, else one that doubles while the
429s keep coming), and a bound on calls in flight.

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
RECOVERY = 1.05  # per accepted call: from 5/s back to 900/s in about 110 calls
FIRST_PAUSE_S = 0.1
LAST_PAUSE_S = 10.0


class Pace:
    def __init__(self, per_s: float = START_PER_S, in_flight: int = 32) -> None:
        self.max_per_s = per_s
        self.per_s = per_s
        self._slots = asyncio.Semaphore(in_flight)
        self._next_at = 0.0
        self._resume_at = 0.0
        self._refusals = 0  # 429s since the last accepted call

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
        self._refusals = 0
        self.per_s = min(self.max_per_s, self.per_s * RECOVERY)

    def rate_limited(self, retry_after_s: float | None) -> None:
        """Stripe said slow down: every call waits, then goes at half the rate. Calls already
        in flight when the pause began count once."""
        now = time.monotonic()
        if now < self._resume_at:
            return
        self._refusals += 1
        pause = FIRST_PAUSE_S * 2 ** min(self._refusals - 1, 10)
        self._resume_at = now + (
            retry_after_s if retry_after_s is not None else min(pause, LAST_PAUSE_S)
        )
        self.per_s = max(MIN_PER_S, self.per_s / 2)
