"""A task type's `network_allow`, parsed once and matched against each request's destination.

Entries: `host` (ports 80 and 443), `host:port`, `*.example.com` (any subdomain, never the apex),
`*.example.com:8443`, and IP literals (`203.0.113.5`, `[2001:db8::1]:443`). An empty list with
`network = true` means any public address on any port; private ranges stay closed either way
(`addresses.py`), because the policy says where a task may go, not what the host may expose.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_address

from saassy.egress.addresses import AddressGuard
from saassy.egress.destination import Destination, bracketed, parse_authority

BARE_PORTS = (80, 443)
WILDCARD = "*."


@dataclass(frozen=True)
class AllowRule:
    host: str  # a normalised name, `*.` + a name, or an IP literal's text
    ports: tuple[int, ...]

    def matches(self, destination: Destination) -> bool:
        if destination.port not in self.ports:
            return False
        if self.host.startswith(WILDCARD):
            return destination.address is None and destination.host.endswith(self.host[1:])
        return destination.host == self.host

    def __str__(self) -> str:
        host = bracketed(self.host)
        return host if self.ports == BARE_PORTS else f"{host}:{self.ports[0]}"


def parse_allow_entry(entry: str) -> AllowRule:
    """One `network_allow` entry; ValueError naming the entry when it is not valid."""
    wildcard = entry.startswith(WILDCARD)
    try:
        # Port 0 cannot be written, so it marks an entry without one.
        destination = parse_authority(entry[len(WILDCARD) :] if wildcard else entry, 0)
        if wildcard and destination.address is not None:
            raise ValueError("a wildcard applies to names, not to IP addresses")
    except ValueError as exc:
        raise ValueError(f"{entry!r} is not a valid network_allow entry: {exc}") from None
    ports = BARE_PORTS if destination.port == 0 else (destination.port,)
    host = WILDCARD + destination.host if wildcard else destination.host
    return AllowRule(host, ports)


def normalise_allow_entry(entry: str) -> str:
    """The canonical text of an entry (the catalog stores this); ValueError if it is not valid."""
    return str(parse_allow_entry(entry))


@dataclass(frozen=True)
class EgressPolicy:
    """Where one task type's sandboxes may connect; no rules means any public destination."""

    rules: tuple[AllowRule, ...] = ()

    @classmethod
    def from_allow_list(cls, entries: Iterable[str]) -> EgressPolicy:
        """Parse a task type's `network_allow` (already validated by the catalog)."""
        return cls(tuple(parse_allow_entry(entry) for entry in entries))

    @property
    def any_public(self) -> bool:
        return not self.rules

    def permits(self, destination: Destination) -> bool:
        return self.any_public or any(rule.matches(destination) for rule in self.rules)


LOCAL_NAMES = ("localhost", ".localhost")  # RFC 6761: always loopback


def never_reachable(entry: str, guard: AddressGuard) -> str | None:
    """Why an allow-list entry could never be reached (the proxy would refuse it every time),
    else None: an IP literal in a refused range the operator did not open, or a local name."""
    rule = parse_allow_entry(entry)
    host = rule.host.removeprefix(WILDCARD[:-1])
    if host == LOCAL_NAMES[0] or host.endswith(LOCAL_NAMES[1]):
        return "localhost always resolves to a loopback address, which is refused"
    try:
        address = ip_address(rule.host)
    except ValueError:
        return None  # a name: where it resolves is known only when a task connects
    reason = guard.refusal(address)
    if reason is None:
        return None
    return f"{reason}, which is refused unless SAASSY_EGRESS_ALLOW_PRIVATE opens it"
