"""A uid of its own for every sandbox, when the platform runs as root.

With one shared uid (say `nobody`), any host process running as that uid could read a running
sandbox's secrets through /proc, or signal it; and two sandboxes would share every per-uid
limit. Each sandbox instead runs as a uid (and gid) of its own, drawn from a range no host
account uses — above the ranges container tools hand out, below 2^31 which some tools mishandle
— and given back when the sandbox is cleaned up. Drawn at random, so two platform processes on
one host are unlikely to meet; within a process, never twice at once.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

FIRST_UID = 0x7000_0000  # 1879048192
RANGE_SIZE = 1 << 20


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int


class SandboxIdentities:
    """Hands out identities; `shared` (a non-root platform) hands out its own, to every sandbox."""

    def __init__(self, first: int = FIRST_UID, size: int = RANGE_SIZE) -> None:
        self.root = os.geteuid() == 0
        self.first, self.size = first, size
        self._in_use: set[int] = set()

    @property
    def description(self) -> str:
        if not self.root:
            return f"uid {os.geteuid()} (the platform's own)"
        return f"a uid of its own, from {self.first} to {self.first + self.size - 1}"

    def take(self) -> Identity:
        if not self.root:
            return Identity(os.geteuid(), os.getegid())
        while True:
            uid = self.first + secrets.randbelow(self.size)
            if uid not in self._in_use:
                self._in_use.add(uid)
                return Identity(uid, uid)

    def give_back(self, identity: Identity) -> None:
        self._in_use.discard(identity.uid)

    def probe(self) -> Identity:
        """An identity to check the host with (bwrap's first run); not held."""
        return Identity(self.first, self.first) if self.root else self.take()
