"""CONNECT tunnels: allow-list rules end to end, opened ranges, exact byte counts."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import ip_address, ip_network

import pytest

from saassy.egress import EgressLimits
from saassy.egress.addresses import AddressGuard
from saassy.egress.destination import IPAddress
from tests.egress.conftest import OpenEgress
from tests.egress.support import Echo, MappedResolver, open_tunnel, payload, tunnel_status


async def exchange(proxy_port: int, target: str, data: bytes, *, early: bytes = b"") -> bytes:
    """Send `data` through a tunnel to an echo server, half-close, read everything back."""
    tunnel = await open_tunnel(proxy_port, target, early=early)
    assert tunnel.status == 200, tunnel.answer
    tunnel.writer.write(data)
    tunnel.writer.write_eof()
    echoed = await tunnel.reader.read()
    await tunnel.close()
    return echoed


async def test_a_tunnel_relays_both_ways_and_counts_every_byte(
    open_egress: OpenEgress, echo: Echo
) -> None:
    egress = await open_egress([f"echo.test:{echo.port}"], hosts={"echo.test": "127.0.0.1"})
    data = payload(3 * 1024 * 1024 + 17)

    echoed = await exchange(egress.port, f"echo.test:{echo.port}", data, early=b"hello")

    assert echoed == b"hello" + data
    stats = await egress.session.close()
    assert (stats.bytes_out, stats.bytes_in) == (len(data) + 5, len(data) + 5)
    assert (stats.allowed, stats.refused, stats.failed) == (1, 0, 0)
    assert stats.egress_bytes == 2 * (len(data) + 5)


async def test_wildcards_match_subdomains_only_and_ports_must_match(
    open_egress: OpenEgress, echo: Echo
) -> None:
    names = ("svc.test", "a.svc.test", "b.a.svc.test", "svc.test.evil.test", "xsvc.test")
    egress = await open_egress([f"*.svc.test:{echo.port}"], hosts=dict.fromkeys(names, "127.0.0.1"))

    allowed = [await tunnel_status(egress.port, f"{name}:{echo.port}") == 200 for name in names]
    other_port = await tunnel_status(egress.port, "a.svc.test:443")

    assert allowed == [False, True, True, False, False]
    assert other_port == 403
    assert egress.session.stats().refused == 4


async def test_an_operator_opened_range_is_reachable_by_types_that_list_it(
    open_egress: OpenEgress, echo: Echo
) -> None:
    resolver = MappedResolver({"internal.test": ["127.0.0.1"], "other.test": ["10.0.0.1"]})
    listed = [f"internal.test:{echo.port}", f"127.0.0.1:{echo.port}", f"other.test:{echo.port}"]
    listed.append(f"[::ffff:127.0.0.1]:{echo.port}")
    egress = await open_egress(listed, resolver=resolver, allow_private=["127.0.0.0/8"])

    by_name = await exchange(egress.port, f"internal.test:{echo.port}", b"by name")
    by_literal = await exchange(egress.port, f"127.0.0.1:{echo.port}", b"by literal")
    mapped = await exchange(egress.port, f"[::ffff:127.0.0.1]:{echo.port}", b"mapped")
    still_closed = await tunnel_status(egress.port, f"other.test:{echo.port}")

    assert (by_name, by_literal, mapped) == (b"by name", b"by literal", b"mapped")
    assert still_closed == 403


async def test_what_the_operator_opened_stays_closed_to_any_public_types(
    open_egress: OpenEgress, echo: Echo
) -> None:
    """An empty allow-list means any *public* address: an opened range or a pinned private name
    is for the task types that list it, never for every tenant's open type."""
    resolver = MappedResolver({"internal.test": ["127.0.0.1"]})
    egress = await open_egress(
        [],
        resolver=resolver,
        allow_private=["127.0.0.0/8"],
        hosts={"pinned.test": "127.0.0.1"},
    )
    for target in ("internal.test", "127.0.0.1", "[::ffff:127.0.0.1]", "pinned.test"):
        assert await tunnel_status(egress.port, f"{target}:{echo.port}") == 403, target


def test_the_hosts_own_addresses_are_refused_unless_opened() -> None:
    own = ip_address("198.51.100.7")  # stands for a public address bound to an interface
    public_own = ip_address("8.8.4.4")
    guard = AddressGuard(own=lambda: frozenset({own, public_own}))
    assert guard.refusal(public_own) == "one of this host's own addresses"
    assert guard.refusal(ip_address(f"::ffff:{public_own}")) == "one of this host's own addresses"
    assert guard.refusal(ip_address("8.8.8.8")) is None
    opened = AddressGuard([ip_network("8.8.4.0/24")], own=lambda: frozenset({public_own}))
    assert opened.refusal(public_own) is None
    assert opened.refusal(public_own, opened=False) == "one of this host's own addresses"


async def test_any_public_address_is_allowed_when_the_list_is_empty(
    open_egress: OpenEgress, echo: Echo
) -> None:
    dialled: list[tuple[IPAddress, int]] = []

    async def connect(address: IPAddress, port: int) -> socket.socket:
        """Stands in for the internet: records the address, reaches the loopback echo."""
        dialled.append((address, port))
        sock = socket.socket()
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", echo.port))
        return sock

    resolver = MappedResolver({"public.test": ["93.184.215.14", "2606:2800:21f:cb07::1"]})
    egress = await open_egress([], resolver=resolver, connect=connect)

    echoed = await exchange(egress.port, "public.test:8443", b"anywhere")
    literal = await exchange(egress.port, "[2606:4700::1111]:443", b"literal")

    assert (echoed, literal) == (b"anywhere", b"literal")
    assert dialled == [(ip_address("93.184.215.14"), 8443), (ip_address("2606:4700::1111"), 443)]


async def test_a_destination_that_never_answers_is_504(open_egress: OpenEgress) -> None:
    async def connect(address: IPAddress, port: int) -> socket.socket:
        await asyncio.Event().wait()  # a SYN into the void
        raise AssertionError("unreachable")

    egress = await open_egress(
        [],
        resolver=MappedResolver({"void.test": ["93.184.215.14"]}),
        limits=EgressLimits(connect_timeout_s=0.05),
        connect=connect,
    )

    tunnel = await open_tunnel(egress.port, "void.test:443")

    assert tunnel.status == 504
    assert b"void.test:443 did not answer within 0.05 s" in tunnel.answer
    assert egress.session.stats().failed == 1


@pytest.mark.parametrize("entry", ["echo.test", "echo.test:443"])
async def test_a_bare_or_other_port_entry_does_not_open_a_random_port(
    open_egress: OpenEgress, echo: Echo, entry: str
) -> None:
    egress = await open_egress([entry], hosts={"echo.test": "127.0.0.1"})

    assert await tunnel_status(egress.port, f"echo.test:{echo.port}") == 403
    assert echo.connections == 0
