"""Names to addresses, looked up by the proxy (the sandbox has no DNS of its own).

The proxy resolves a name once, checks every address it got and connects to a checked one, so
a second lookup (DNS rebinding) can never change where a connection goes. Names the operator
pins (`SAASSY_EGRESS_HOSTS`) skip DNS and count as listed by the operator: their addresses pass
even when private, which is also how tests reach loopback servers under names like
`allowed.test`.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from ipaddress import ip_address
from typing import Protocol

from saassy.egress.destination import IPAddress, normalise_name

RESOLVE_TIMEOUT_S = 5.0


class ResolveFailed(Exception):
    """A name has no address (or the lookup timed out); `reason` is safe to show the task."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host}: {reason}")
        self.host = host
        self.reason = reason


class Resolver(Protocol):
    async def resolve(self, host: str) -> list[IPAddress]:
        """Every address of `host` (a normalised name), or ResolveFailed."""
        ...


class SystemResolver:
    """The host's resolver through the event loop's `getaddrinfo`, bounded by a timeout."""

    def __init__(self, timeout_s: float = RESOLVE_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s

    async def resolve(self, host: str) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_s):
                infos = await loop.getaddrinfo(
                    host, None, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
        except TimeoutError:
            raise ResolveFailed(host, "the lookup timed out") from None
        except socket.gaierror as exc:
            raise ResolveFailed(host, exc.strerror or "the lookup failed") from None
        addresses = list(dict.fromkeys(ip_address(info[4][0]) for info in infos))
        if not addresses:
            raise ResolveFailed(host, "no address")
        return addresses


def parse_pinned_hosts(hosts: Mapping[str, str]) -> dict[str, IPAddress]:
    """`SAASSY_EGRESS_HOSTS` (name -> IP address), normalised; ValueError naming a bad entry."""
    pinned: dict[str, IPAddress] = {}
    for name, address in hosts.items():
        try:
            key = normalise_name(name)
        except ValueError as exc:
            raise ValueError(f"{name!r} is not a host name ({exc})") from None
        try:
            pinned[key] = ip_address(address)
        except ValueError:
            raise ValueError(f"{name!r}: {address!r} is not an IP address") from None
    return pinned
