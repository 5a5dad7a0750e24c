"""A short-lived, per-process memory of the API keys that authenticated, so a busy key is read
from the database once per `SAASSY_API_KEY_CACHE_S` seconds, not once per request.

What a cached key may carry stale is bounded: its revocation, a rotation's new expiry, its
organization's deletion or plan are seen at the latest that many seconds after they commit, in
every process; in the process that made the change at once (the change's commit clears this
cache: `KeyStandingChanged`). The expiry itself is checked at every request. Only keys in good
standing are remembered: an unknown, revoked or expired key is read from the database each
time, so a new key works at once and guessing keys fills no memory. A submission re-reads its
organization's plan in the transaction that admits the task (tasks/service.py), so quotas are
always those of the current plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from saassy.auth.repository import KeyHolder

MAX_KEYS = 10_000


@dataclass(frozen=True)
class KeyStandingChanged:
    """After-commit effect: an API key was revoked or rotated, or an organization deleted or
    moved to another plan; this process forgets every key it remembers."""


class ApiKeyCache:
    """Key holders by key digest, each for `ttl_s` seconds from its read (0: never kept)."""

    def __init__(self, ttl_s: float, max_keys: int = MAX_KEYS) -> None:
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self.clock: Callable[[], float] = time.monotonic
        self._held: dict[str, tuple[float, KeyHolder]] = {}
        # Counts the clears: a holder read before a clear is never put after it (it may be what
        # the clearing change, committed meanwhile, revoked).
        self.generation = 0

    def __len__(self) -> int:
        return len(self._held)

    def get(self, digest: str) -> KeyHolder | None:
        found = self._held.get(digest)
        if found is None:
            return None
        read_at, holder = found
        if self.clock() - read_at >= self.ttl_s:
            del self._held[digest]
            return None
        return holder

    def put(self, digest: str, holder: KeyHolder, read_at: float, generation: int) -> None:
        """Remember `holder`, read from the database at `read_at` (`clock()`) in `generation`
        (both taken before the read: its age counts from there, and a clear since drops it)."""
        if self.ttl_s <= 0 or generation != self.generation:
            return
        if digest not in self._held and len(self._held) >= self.max_keys:
            del self._held[next(iter(self._held))]  # the oldest read
        self._held[digest] = (read_at, holder)

    def touch(self, digest: str, holder: KeyHolder) -> None:
        """Replace a remembered holder (its last use recorded), keeping its age."""
        found = self._held.get(digest)
        if found is not None:
            self._held[digest] = (found[0], holder)

    def clear(self) -> None:
        self.generation += 1
        self._held.clear()
