"""What a sandbox's egress can cost the host: connections, time, memory, notices; and close()."""

from __future__ import annotations

import asyncio
import contextlib
import resource

import pytest

from saassy.egress import EgressLimits, EgressPolicy, EgressProxy
from saassy.egress.limits import raise_descriptor_limit
from tests.egress.conftest import OpenEgress, loopback_listener
from tests.egress.support import Echo, MappedResolver, open_tunnel, send_raw, tunnel_status

ECHO_HOST = {"echo.test": "127.0.0.1"}


async def test_close_ends_open_tunnels_stops_listening_and_is_idempotent(
    open_egress: OpenEgress, echo: Echo
) -> None:
    egress = await open_egress([f"echo.test:{echo.port}"], hosts=ECHO_HOST)
    tunnels = [await open_tunnel(egress.port, f"echo.test:{echo.port}") for _ in range(3)]
    for tunnel in tunnels:
        tunnel.writer.write(b"ping")
        assert await tunnel.reader.readexactly(4) == b"ping"

    first = await egress.session.close()
    again = await egress.session.close()

    for tunnel in tunnels:
        assert await tunnel.reader.read() == b""  # the proxy closed it
        await tunnel.close()
    assert first == again
    assert (first.allowed, first.bytes_out, first.bytes_in) == (3, 12, 12)
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", egress.port)


async def test_connections_past_the_cap_are_503(open_egress: OpenEgress, echo: Echo) -> None:
    egress = await open_egress(
        [f"echo.test:{echo.port}"], hosts=ECHO_HOST, limits=EgressLimits(max_connections=2)
    )
    held = [await open_tunnel(egress.port, f"echo.test:{echo.port}") for _ in range(2)]

    over = await open_tunnel(egress.port, f"echo.test:{echo.port}")

    assert [tunnel.status for tunnel in held] == [200, 200]
    assert over.status == 503
    assert b"more than 2 connections open at once" in over.answer
    stats = egress.session.stats()
    assert (stats.allowed, stats.refused) == (2, 1)
    for tunnel in held:
        await tunnel.close()


async def test_a_silent_tunnel_is_closed_after_the_idle_timeout(
    open_egress: OpenEgress, echo: Echo
) -> None:
    egress = await open_egress(
        [f"echo.test:{echo.port}"], hosts=ECHO_HOST, limits=EgressLimits(idle_timeout_s=0.2)
    )
    tunnel = await open_tunnel(egress.port, f"echo.test:{echo.port}")

    assert await tunnel.reader.read() == b""  # nothing sent: the proxy hangs up
    await tunnel.close()


async def test_a_client_that_sends_no_request_gets_408(open_egress: OpenEgress) -> None:
    egress = await open_egress([], limits=EgressLimits(head_timeout_s=0.2))

    answer = await send_raw(egress.port, b"CONNECT half")

    assert answer.startswith(b"HTTP/1.1 408 Request Timeout")
    assert egress.session.stats().refused == 1


async def test_a_reader_that_stops_reading_stops_the_sender(open_egress: OpenEgress) -> None:
    """Backpressure: the proxy holds a buffer, not what the destination keeps sending."""
    total = 256 * 1024 * 1024
    sent = 0
    chunk = bytes(1024 * 1024)

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        with contextlib.suppress(ConnectionError):
            while sent < total:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        writer.close()

    server = await asyncio.start_server(flood, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    egress = await open_egress([f"flood.test:{port}"], hosts={"flood.test": "127.0.0.1"})
    tunnel = await open_tunnel(egress.port, f"flood.test:{port}")

    # Wait until the sender is stuck: its count stops moving while nobody reads.
    settled, last = 0, -1
    while settled < 5:
        await asyncio.sleep(0.05)
        settled, last = (settled + 1, sent) if sent == last else (0, sent)
    stuck_at = sent
    received = 0
    while data := await tunnel.reader.read(1 << 20):
        received += len(data)
    await tunnel.close()
    server.close()
    await server.wait_closed()

    assert stuck_at < total / 4  # kernel buffers and one proxy buffer, not the whole flood
    assert received == total == egress.session.stats().bytes_in


async def test_notices_stop_after_the_cap_but_refusals_are_still_counted(
    open_egress: OpenEgress,
) -> None:
    egress = await open_egress(["allowed.test:443"], limits=EgressLimits(max_notices=3))

    statuses = [await tunnel_status(egress.port, f"denied{n}.test:443") for n in range(6)]

    assert statuses == [403] * 6
    assert egress.session.stats().refused == 6
    assert len(egress.notices) == 4
    assert egress.notices[0] == (
        "saassy egress: denied0.test:443 is not in this task type's network_allow"
    )
    assert egress.notices[-1] == "saassy egress: further refusals are counted but not shown"


async def test_every_session_of_a_proxy_shares_one_connection_budget(echo: Echo) -> None:
    """However many sandboxes flood it, the server keeps descriptors for its own work."""
    proxy = EgressProxy(
        MappedResolver(),
        hosts=ECHO_HOST,
        limits=EgressLimits(max_connections=10, max_connections_total=3),
    )
    policy = EgressPolicy.from_allow_list([f"echo.test:{echo.port}"])
    sessions, ports = [], []
    for name in ("first", "second"):
        listener = loopback_listener()
        ports.append(listener.getsockname()[1])
        sessions.append(await proxy.attach(name, policy, listener))
    try:
        held = [await open_tunnel(ports[0], f"echo.test:{echo.port}") for _ in range(2)]
        held.append(await open_tunnel(ports[1], f"echo.test:{echo.port}"))
        over = await open_tunnel(ports[1], f"echo.test:{echo.port}")
        assert [tunnel.status for tunnel in held] == [200, 200, 200]
        assert over.status == 503
        assert b"at capacity" in over.answer
        await held[0].close()
        await asyncio.sleep(0.05)  # the proxy notices the close and frees its slot
        again = await open_tunnel(ports[1], f"echo.test:{echo.port}")
        assert again.status == 200
        for tunnel in [*held[1:], again]:
            await tunnel.close()
    finally:
        for session in sessions:
            await session.close()


def test_the_descriptor_limit_is_raised_to_the_hard_one() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
        raised = raise_descriptor_limit()
        assert raised == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert raised == hard or hard == resource.RLIM_INFINITY
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
