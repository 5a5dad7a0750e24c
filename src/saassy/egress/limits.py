"""What one sandbox's egress may cost the host, whatever the sandbox does."""

from __future__ import annotations

import resource
from dataclasses import dataclass, field

# Descriptors left to the rest of the server (the API's sockets, the database, sandboxes' pipes).
RESERVED_DESCRIPTORS = 512
DESCRIPTORS_PER_CONNECTION = 2  # the sandbox's side and the destination's


def raise_descriptor_limit() -> int:
    """Lift the soft open-files limit to the hard one (1024 is a common default, and every
    relayed connection holds two descriptors); the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def process_wide_connections() -> int:
    """How many relayed connections this process can hold open with the descriptors it has."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    spare = soft - RESERVED_DESCRIPTORS
    return max(64, spare // (DESCRIPTORS_PER_CONNECTION + 1))


ANSWERS_IN_FLIGHT = 64  # refusals being answered at once, across sessions


class ConnectionBudget:
    """Connections open across every session of one proxy, and refusals still being answered:
    however many sandboxes flood it, the server keeps descriptors for its own work. The event
    loop's thread is the only user."""

    def __init__(self, total: int, answers: int = ANSWERS_IN_FLIGHT) -> None:
        self.limits = {"connection": total, "answer": answers}
        self.open = {"connection": 0, "answer": 0}

    def take(self, kind: str = "connection") -> bool:
        if self.open[kind] >= self.limits[kind]:
            return False
        self.open[kind] += 1
        return True

    def give(self, kind: str = "connection") -> None:
        self.open[kind] -= 1


@dataclass(frozen=True)
class EgressLimits:
    max_connections: int = 64  # open at once per session; more are answered 503
    # ... and across all sessions of the proxy (refusals still being answered count too).
    max_connections_total: int = field(default_factory=process_wide_connections)
    connect_timeout_s: float = 10.0  # to open the destination's connection (504 after)
    head_timeout_s: float = 10.0  # for the client's request head to arrive (408 after)
    idle_timeout_s: float = 300.0  # a connection with no byte either way is closed
    max_head_bytes: int = 64 * 1024  # a larger request head is 431
    buffer_bytes: int = 64 * 1024  # per direction per connection: the most held in memory
    max_notices: int = 100  # per session; later refusals are counted, not announced
