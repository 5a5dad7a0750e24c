"""Addresses no sandbox may reach unless the operator opens them: loopback, private, metadata...

Checked on the address the proxy will connect to, after resolution, so a public name that
resolves to 127.0.0.1 is refused like the literal. IPv6 forms that carry an IPv4 address
(mapped, compatible, SIIT, 6to4, NAT64) are judged by that address: `::ffff:127.0.0.1` is
loopback. Anything Python does not call global is refused too, so a range missing from the
table below errs on the closed side.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network

from saassy.egress.destination import IPAddress

IPNetwork = IPv4Network | IPv6Network

# First match names the reason; the metadata addresses come before the ranges holding them.
REFUSED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ip_network(cidr), reason)
    for cidr, reason in (
        ("169.254.169.254/32", "a cloud metadata address"),
        ("fd00:ec2::254/128", "a cloud metadata address"),
        ("0.0.0.0/8", "a 'this network' address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard address"),
        ("2001::/23", "an IETF protocol address"),
        ("2001:db8::/32", "a documentation address"),
        ("3fff::/20", "a documentation address"),
        ("fc00::/7", "a unique local (private) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
_MAPPED = ip_network("::ffff:0:0/96")
_TRANSLATED = ip_network("::ffff:0:0:0/96")  # SIIT
_COMPATIBLE = ip_network("::/96")
_SIX_TO_FOUR = ip_network("2002::/16")
_NAT64 = ip_network("64:ff9b::/96")


def embedded_ipv4(address: IPAddress) -> IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through mapping, translation, 6to4 or NAT64."""
    if isinstance(address, IPv4Address):
        return None
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    if any(address in network for network in (_MAPPED, _TRANSLATED, _NAT64, _COMPATIBLE)):
        if address in _COMPATIBLE and int(address) <= 1:
            return None  # :: and ::1 are themselves, not IPv4-compatible forms
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_private_ranges(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """CIDRs the operator opens (`SAASSY_EGRESS_ALLOW_PRIVATE`); ValueError naming a bad one."""
    ranges = []
    for entry in entries:
        try:
            ranges.append(ip_network(entry, strict=True))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not a CIDR range ({exc})") from None
    return tuple(ranges)


OWN_ADDRESSES_TTL_S = 10.0
_own: tuple[float, frozenset[IPAddress]] = (0.0, frozenset())


def _read_own_addresses() -> frozenset[IPAddress]:
    """Every address configured on this host's interfaces (Linux /proc): a service bound to
    0.0.0.0 answers on each, public or not, and the sandbox must reach none of them."""
    found: set[IPAddress] = set()
    try:
        with open("/proc/net/fib_trie") as trie:
            previous = ""
            for line in trie:
                if "/32 host LOCAL" in line:
                    found.add(IPv4Address(previous.split()[-1]))
                previous = line
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open("/proc/net/if_inet6") as inet6:
            for line in inet6:
                hexed = line.split()[0]
                found.add(IPv6Address(int(hexed, 16)))
    except (OSError, ValueError, IndexError):
        pass
    return frozenset(found)


def host_addresses() -> frozenset[IPAddress]:
    """This host's own addresses, read again at most every `OWN_ADDRESSES_TTL_S`."""
    global _own
    if time.monotonic() - _own[0] > OWN_ADDRESSES_TTL_S:
        _own = (time.monotonic(), _read_own_addresses())
    return _own[1]


class AddressGuard:
    """Says why an address is refused, or None when a sandbox may connect to it."""

    def __init__(
        self,
        opened: Iterable[IPNetwork] = (),
        own: Callable[[], frozenset[IPAddress]] | None = None,
    ) -> None:
        self.opened = tuple(opened)
        self.own_addresses = own or host_addresses

    def refusal(self, address: IPAddress, *, opened: bool = True) -> str | None:
        """`opened=False`: the operator's opened ranges do not apply (an any-public policy)."""
        inner = embedded_ipv4(address)
        if opened and (self._is_opened(address) or (inner and self._is_opened(inner))):
            return None
        reason = _why_refused(inner if inner is not None else address)
        if reason is None and (inner or address) in self.own_addresses():
            return "one of this host's own addresses"
        return reason

    def _is_opened(self, address: IPAddress) -> bool:
        return any(address.version == net.version and address in net for net in self.opened)


def _why_refused(address: IPv4Address | IPv6Address) -> str | None:
    for network, reason in REFUSED:
        if address.version == network.version and address in network:
            return reason
    return None if address.is_global else "a non-public address"
