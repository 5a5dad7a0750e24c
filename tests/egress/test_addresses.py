"""The ranges no sandbox reaches unless the operator opens them, in every spelling."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from saassy.egress.addresses import AddressGuard, parse_private_ranges

REFUSED = [
    ("0.0.0.0", "a 'this network' address"),  # noqa: S104 - an address, not a bind
    ("127.0.0.1", "a loopback address"),
    ("127.255.255.254", "a loopback address"),
    ("10.0.0.1", "a private address"),
    ("100.64.0.1", "a shared (carrier-grade NAT) address"),
    ("100.100.100.200", "a shared (carrier-grade NAT) address"),
    ("172.16.0.1", "a private address"),
    ("172.31.255.255", "a private address"),
    ("192.168.1.1", "a private address"),
    ("169.254.1.1", "a link-local address"),
    ("169.254.169.254", "a cloud metadata address"),
    ("192.0.2.1", "a documentation address"),
    ("198.18.0.1", "a benchmarking address"),
    ("224.0.0.1", "a multicast address"),
    ("239.255.255.250", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "a reserved address"),
    ("::", "the unspecified address"),
    ("::1", "a loopback address"),
    ("fc00::1", "a unique local (private) address"),
    ("fd12:3456::1", "a unique local (private) address"),
    ("fd00:ec2::254", "a cloud metadata address"),
    ("fe80::1", "a link-local address"),
    ("fec0::1", "a site-local address"),
    ("ff02::1", "a multicast address"),
    ("2001:db8::1", "a documentation address"),
    ("2001::1", "an IETF protocol address"),  # Teredo
    ("64:ff9b:1::1", "a local-use NAT64 address"),
    ("100::1", "a discard address"),
    # IPv4 inside IPv6: judged by the IPv4 address they reach.
    ("::ffff:127.0.0.1", "a loopback address"),
    ("::ffff:10.1.2.3", "a private address"),
    ("::ffff:0:169.254.169.254", "a cloud metadata address"),
    ("::127.0.0.1", "a loopback address"),
    ("2002:7f00:1::", "a loopback address"),
    ("2002:a9fe:a9fe::1", "a cloud metadata address"),
    ("64:ff9b::7f00:1", "a loopback address"),
    ("64:ff9b::c0a8:101", "a private address"),
]
PUBLIC = ["8.8.8.8", "93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"]


@pytest.mark.parametrize(("address", "why"), REFUSED)
def test_non_public_addresses_are_refused_with_their_reason(address: str, why: str) -> None:
    assert AddressGuard().refusal(ip_address(address)) == why


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert AddressGuard().refusal(ip_address(address)) is None


def test_an_opened_range_passes_in_every_spelling_and_nothing_else_does() -> None:
    guard = AddressGuard(parse_private_ranges(["10.0.0.0/8", "fd00:1::/32"]))
    for address in ("10.9.8.7", "::ffff:10.9.8.7", "64:ff9b::a09:807", "fd00:1::5"):
        assert guard.refusal(ip_address(address)) is None, address
    assert guard.refusal(ip_address("192.168.0.1")) == "a private address"
    assert guard.refusal(ip_address("127.0.0.1")) == "a loopback address"


@pytest.mark.parametrize(
    ("entry", "why"),
    [("10.0.0.1/8", "has host bits set"), ("localhost", "does not appear to be"), ("", "")],
)
def test_a_bad_range_is_named(entry: str, why: str) -> None:
    with pytest.raises(ValueError, match="is not a CIDR range") as caught:
        parse_private_ranges(["127.0.0.0/8", entry])
    assert repr(entry) in str(caught.value)
    assert why in str(caught.value)
