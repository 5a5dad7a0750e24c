"""Short-lived, per-process memories of who may call: the API keys that authenticated and the
signed-in users' access (their standing, organizations, roles and plans), each read from the
database once per `SAASSY_API_KEY_CACHE_S` / `SAASSY_USER_ACCESS_CACHE_S` seconds, not once per
request.

What a remembered read may carry stale is bounded: a key's revocation, a rotation's new expiry,
an organization's deletion or plan, a member's role, removal or new organization, a user's
disabling, are seen at the latest that many seconds after they commit, in every process; in the
process that made the change at once (the change's commit clears both memories:
`AccessChanged`). A key's expiry and an access token's are checked at every request. Only what
is in good standing is remembered: an unknown, revoked or expired key, or a disabled or unknown
user, is read from the database each time, so a new key works at once and guessing keys fills no
memory. A submission re-reads its organization's plan in the transaction that admits the task
(tasks/service.py), so quotas are always those of the current plan; a stream re-reads its
caller's standing while it runs (`still_allowed_in`, never from here). A user's remembered
access serves reads and submissions only (`authenticate`): a change made under a role taken
away meanwhile, an API key or an invitation, would outlive the bound.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

MAX_KEYS = 10_000
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class AccessChanged:
    """After-commit effect: an API key was revoked or rotated, an organization deleted or moved
    to another plan, a membership made, changed or ended, a user disabled; this process forgets
    every key and user it remembers."""


class RecentReads(Generic[K, V]):
    """Reads by key (a key's digest, a user's id), each for `ttl_s` seconds from the read (0:
    never kept)."""

    def __init__(self, ttl_s: float, max_keys: int = MAX_KEYS) -> None:
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self.clock: Callable[[], float] = time.monotonic
        self._held: dict[K, tuple[float, V]] = {}
        # Counts the clears: a holder read before a clear is never put after it (it may be what
        # the clearing change, committed meanwhile, revoked).
        self.generation = 0

    def __len__(self) -> int:
        return len(self._held)

    def get(self, key: K) -> V | None:
        found = self._held.get(key)
        if found is None:
            return None
        read_at, value = found
        if self.clock() - read_at >= self.ttl_s:
            del self._held[key]
            return None
        return value

    def put(self, key: K, value: V, read_at: float, generation: int) -> None:
        """Remember `value`, read from the database at `read_at` (`clock()`) in `generation`
        (both taken before the read: its age counts from there, and a clear since drops it)."""
        if self.ttl_s <= 0 or generation != self.generation:
            return
        if key not in self._held and len(self._held) >= self.max_keys:
            del self._held[next(iter(self._held))]  # the oldest read
        self._held[key] = (read_at, value)

    def touch(self, key: K, value: V) -> None:
        """Replace a remembered value (a key's last use recorded), keeping its age."""
        found = self._held.get(key)
        if found is not None:
            self._held[key] = (found[0], value)

    def clear(self) -> None:
        self.generation += 1
        self._held.clear()
