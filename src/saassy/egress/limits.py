"""What one sandbox's egress may cost the host, whatever the sandbox does."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EgressLimits:
    max_connections: int = 64  # open at once per session; more are answered 503
    connect_timeout_s: float = 10.0  # to open the destination's connection (504 after)
    head_timeout_s: float = 10.0  # for the client's request head to arrive (408 after)
    idle_timeout_s: float = 300.0  # a connection with no byte either way is closed
    max_head_bytes: int = 64 * 1024  # a larger request head is 431
    buffer_bytes: int = 64 * 1024  # per direction per connection: the most held in memory
    max_notices: int = 100  # per session; later refusals are counted, not announced
