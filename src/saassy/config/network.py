"""Checks of the network settings: trusted proxies and what the egress proxy opens."""

import ipaddress

from saassy.egress.addresses import parse_private_ranges
from saassy.egress.resolver import parse_pinned_hosts


def proxy_addresses(value: list[str]) -> list[str]:
    try:
        return [str(ipaddress.ip_network(entry.strip(), strict=False)) for entry in value]
    except ValueError as exc:
        raise ValueError(f"not an IP address or CIDR range: {exc}") from None


def cidr_ranges(value: list[str]) -> list[str]:
    return [str(network) for network in parse_private_ranges(value)]


def pinned_hosts(value: dict[str, str]) -> dict[str, str]:
    return {name: str(address) for name, address in parse_pinned_hosts(value).items()}
