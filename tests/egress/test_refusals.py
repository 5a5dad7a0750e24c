"""What the proxy refuses: names off the list, private addresses in any spelling, bad heads."""

from __future__ import annotations

from ipaddress import ip_address

import httpx
import pytest

from saassy.egress.destination import bracketed
from tests.egress.conftest import OpenEgress
from tests.egress.support import Echo, MappedResolver, Origin, open_tunnel, send_raw

PINNED = {"allowed.test": "127.0.0.1"}


def body_line(answer: bytes) -> str:
    return answer.split(b"\r\n\r\n", 1)[1].decode()


async def test_a_name_off_the_allow_list_is_403_with_a_one_line_reason(
    open_egress: OpenEgress, origin: Origin
) -> None:
    egress = await open_egress(["allowed.test:443"], hosts={**PINNED, "denied.test": "127.0.0.1"})

    tunnel = await open_tunnel(egress.port, "denied.test:443")
    async with httpx.AsyncClient(proxy=egress.url, trust_env=False) as http:
        plain = await http.get(f"http://denied.test:{origin.port}/x?token=SECRET-VALUE")

    reason = "saassy egress: denied.test:443 is not in this task type's network_allow\n"
    assert tunnel.status == 403
    assert tunnel.answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"Content-Type: text/plain; charset=utf-8" in tunnel.answer
    assert body_line(tunnel.answer) == reason
    assert plain.status_code == 403
    assert "SECRET-VALUE" not in plain.text
    assert origin.heads == []
    stats = egress.session.stats()
    assert (stats.allowed, stats.refused, stats.bytes_out, stats.bytes_in) == (0, 2, 0, 0)
    assert egress.notices == [reason.strip(), plain.text.strip()]
    assert not any("SECRET-VALUE" in notice for notice in egress.notices)


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("10.1.2.3", "a private address"),
        ("[::1]", "a loopback address"),
        ("[::ffff:127.0.0.1]", "a loopback address"),
        ("[::ffff:169.254.169.254]", "a cloud metadata address"),
        ("[64:ff9b::a01:203]", "a private address"),
        ("[fe80::1]", "a link-local address"),
    ],
)
async def test_private_literals_are_refused_even_when_listed(
    open_egress: OpenEgress, echo: Echo, target: str, why: str
) -> None:
    for allow in ([], [f"{target}:{echo.port}"]):
        egress = await open_egress(allow)

        tunnel = await open_tunnel(egress.port, f"{target}:{echo.port}")

        assert tunnel.status == 403
        shown = bracketed(str(ip_address(target.strip("[]"))))  # Python's spelling of it
        assert body_line(tunnel.answer) == f"saassy egress: {shown}:{echo.port} refused: {why}\n"
    assert echo.connections == 0


@pytest.mark.parametrize(
    "addresses", [["127.0.0.1"], ["93.184.215.14", "127.0.0.1"], ["::ffff:10.0.0.1"]]
)
async def test_a_name_resolving_to_a_refused_address_is_refused(
    open_egress: OpenEgress, echo: Echo, addresses: list[str]
) -> None:
    resolver = MappedResolver({"rebind.test": addresses})
    egress = await open_egress(["rebind.test:443", f"rebind.test:{echo.port}"], resolver=resolver)

    tunnel = await open_tunnel(egress.port, f"rebind.test:{echo.port}")

    assert tunnel.status == 403
    assert b"rebind.test" in tunnel.answer
    assert b"its name resolves to a" in tunnel.answer
    assert addresses[-1].encode() not in tunnel.answer  # the task cannot map internal names
    assert resolver.lookups == ["rebind.test"]
    assert echo.connections == 0


async def test_a_name_that_does_not_resolve_is_502_and_counted_as_failed(
    open_egress: OpenEgress,
) -> None:
    egress = await open_egress([])

    tunnel = await open_tunnel(egress.port, "nowhere.test:443")

    assert tunnel.status == 502
    assert body_line(tunnel.answer) == "saassy egress: cannot resolve nowhere.test: no such name\n"
    stats = egress.session.stats()
    assert (stats.allowed, stats.refused, stats.failed) == (0, 0, 1)


async def test_an_unreachable_destination_is_502(open_egress: OpenEgress, echo: Echo) -> None:
    closed_port = echo.port
    await echo.stop()
    egress = await open_egress([f"allowed.test:{closed_port}"], hosts=PINNED)

    tunnel = await open_tunnel(egress.port, f"allowed.test:{closed_port}")

    assert tunnel.status == 502
    assert b"is unreachable (connection refused)" in tunnel.answer
    assert egress.session.stats().failed == 1


@pytest.mark.parametrize(
    ("request_head", "status", "reason"),
    [
        (b"NONSENSE\r\n\r\n", 400, "malformed HTTP request"),
        (b"GET /relative HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 400, "absolute form"),
        (b"GET https://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 400, "CONNECT"),
        (b"GET http://u:p@allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 400, "user info"),
        (b"GET http://127.1/ HTTP/1.1\r\nHost: 127.1\r\n\r\n", 400, "cannot end in a number"),
        (b"CONNECT allowed.test HTTP/1.1\r\nHost: allowed.test\r\n\r\n", 400, "host:port"),
        (b"CONNECT allowed.test:99999 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "not a port"),
        (
            b"GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n" + b"X: y\r\n" * 12_000,
            431,
            "request head larger than 65536 bytes",
        ),
    ],
)
async def test_bad_request_heads_are_answered_not_forwarded(
    open_egress: OpenEgress, request_head: bytes, status: int, reason: str
) -> None:
    egress = await open_egress([], hosts=PINNED)

    answer = await send_raw(egress.port, request_head)

    assert answer.startswith(b"HTTP/1.1 %d " % status)
    assert reason in body_line(answer)
    assert egress.session.stats().refused == 1
    assert len(egress.notices) == 1


async def test_a_request_framed_two_ways_is_400(open_egress: OpenEgress, origin: Origin) -> None:
    """Content-Length with Transfer-Encoding is how requests are smuggled past a proxy."""
    egress = await open_egress([f"origin.test:{origin.port}"], hosts={"origin.test": "127.0.0.1"})
    answer = await send_raw(
        egress.port,
        f"POST http://origin.test:{origin.port}/echo HTTP/1.1\r\nHost: origin.test\r\n"
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"both Content-Length and Transfer-Encoding" in answer
    assert origin.heads == []
