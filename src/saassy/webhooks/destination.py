"""Where a webhook may be sent: http(s) URLs whose addresses are public, unless the operator
opens private ones (`SAASSY_WEBHOOKS_ALLOW_PRIVATE`).

Link-local, multicast and unspecified addresses and cloud metadata services are refused even
then. The egress rules apply twice: to an IP literal when the endpoint is saved, and to every
address a name resolves to at each delivery, which then connects to the address it checked: a
name that resolved to a public address when it was saved and to 127.0.0.1 since (DNS
rebinding) is refused.

What a refusal at delivery tells the tenant is generic: the addresses a name resolves to on the
platform's network, and its resolver's errors, are the operator's to see (in the server log).
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from urllib.parse import SplitResult, urlsplit

import structlog

from saassy.egress.addresses import AddressGuard
from saassy.egress.destination import IPAddress

SCHEMES = ("http", "https")
GUARD = AddressGuard()
# What a delivery's log says when a name is refused: no address, no resolver message.
NOT_PUBLIC = "the host resolves to a private, loopback or otherwise non-public address"
NOT_RESOLVED = "could not resolve the host"
# Hosts `inet_aton` (and so the resolver) reads as IPv4 in shorthand, decimal, octal or hex.
NUMERIC_HOST = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)
# Cloud metadata services: AWS, GCP, Azure (IPv4), AWS ECS tasks, AWS over IPv6.
METADATA_ADDRESSES = frozenset(
    ip_address(address) for address in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254")
)

log = structlog.get_logger(__name__)


class DestinationRefused(ValueError):
    """The URL is not one a webhook may be sent to; the message says why, fit for the tenant."""


@dataclass(frozen=True)
class Destination:
    url: str
    parts: SplitResult
    host: str
    port: int


def parse_url(url: str) -> Destination:
    """An absolute http(s) URL with a host, no credentials and no fragment."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused(f"not a valid URL ({exc})") from None
    if parts.scheme not in SCHEMES:
        raise DestinationRefused("the URL must start with https:// or http://")
    if not parts.hostname:
        raise DestinationRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("the URL may not carry a user name or password")
    if parts.fragment:
        raise DestinationRefused("the URL may not have a #fragment")
    default = 443 if parts.scheme == "https" else 80
    return Destination(url, parts, parts.hostname, port or default)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names by itself, in any form the resolver reads as one: `127.1`,
    `2130706433`, `0x7f.1` and `0177.0.0.1` are 127.0.0.1 as much as `127.0.0.1` is."""
    host = host.rstrip(".")
    try:
        return ip_address(host)
    except ValueError:
        pass
    if NUMERIC_HOST.fullmatch(host) and any(char.isdigit() for char in host):
        try:
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why a webhook may not go to `address`. Opening private networks never opens link-local
    ones: cloud metadata services answer there (169.254.169.254, fd00:ec2::254) with the
    host's credentials, and no receiver an operator runs lives there."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        return "a link-local, multicast or unspecified address"
    if allow_private:
        return None
    return GUARD.refusal(address, opened=False)


def check_url(url: str, *, allow_private: bool) -> Destination:
    """At creation: the URL's form, and its host when it is an IP literal."""
    destination = parse_url(url)
    address = literal_address(destination.host)
    if address is not None and (why := refusal(address, allow_private=allow_private)):
        raise DestinationRefused(f"{destination.host} is {why}")
    return destination


async def resolve(destination: Destination, *, allow_private: bool) -> IPAddress:
    """The address to connect to: the first of the host's, once every one has passed."""
    literal = literal_address(destination.host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                destination.host, destination.port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            log.warning("webhook host does not resolve", host=destination.host, error=str(exc))
            raise DestinationRefused(NOT_RESOLVED) from None
        addresses = list(dict.fromkeys(ip_address(info[4][0]) for info in infos))
        if not addresses:
            log.warning("webhook host resolves to nothing", host=destination.host)
            raise DestinationRefused(NOT_RESOLVED)
    # Every address, not only the first: the client must not be able to pick another.
    for address in addresses:
        if (why := refusal(address, allow_private=allow_private)) is not None:
            log.warning(
                "webhook address refused", host=destination.host, address=str(address), reason=why
            )
            raise DestinationRefused(NOT_PUBLIC)
    return addresses[0]
