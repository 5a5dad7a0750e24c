"""Plain HTTP through the proxy: absolute-form in, origin-form out, bytes metered."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from tests.egress.conftest import OpenEgress
from tests.egress.support import Origin, header_map, payload, send_raw

HOSTS = {"allowed.test": "127.0.0.1"}


def client(proxy_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(proxy=proxy_url, trust_env=False, timeout=30)


async def test_an_allowed_pinned_name_is_reached_in_origin_form(
    open_egress: OpenEgress, origin: Origin
) -> None:
    egress = await open_egress([f"allowed.test:{origin.port}"], hosts=HOSTS)

    async with client(egress.url) as http:
        answer = await http.get(
            f"http://Allowed.TEST.:{origin.port}/head?q=1",
            headers={
                "Proxy-Authorization": "Basic c2VjcmV0",
                "Keep-Alive": "timeout=5",
                "X-Drop-Me": "1",
                "Connection": "keep-alive, X-Drop-Me",
                "X-Kept": "yes",
            },
        )

    assert answer.status_code == 200
    forwarded = answer.content
    assert forwarded.startswith(b"GET /head?q=1 HTTP/1.1\r\n")
    headers = header_map(forwarded)
    assert headers[b"host"] == f"allowed.test:{origin.port}".encode()
    assert headers[b"connection"] == b"close"
    assert headers[b"x-kept"] == b"yes"
    for gone in (b"proxy-authorization", b"keep-alive", b"x-drop-me", b"proxy-connection"):
        assert gone not in headers
    stats = egress.session.stats()
    assert (stats.allowed, stats.refused, stats.failed) == (1, 0, 0)
    assert stats.bytes_out == len(forwarded)  # the forwarded head is what was sent
    assert stats.bytes_in == len(
        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(forwarded)
    ) + len(forwarded)
    assert egress.notices == []


async def test_request_bodies_are_relayed_as_framed(
    open_egress: OpenEgress, origin: Origin
) -> None:
    egress = await open_egress([f"allowed.test:{origin.port}"], hosts=HOSTS)
    body = payload(300_000)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 70_000):
            yield body[start : start + 70_000]

    async with client(egress.url) as http:
        sized = await http.post(f"http://allowed.test:{origin.port}/echo", content=body)
        chunked = await http.post(f"http://allowed.test:{origin.port}/echo", content=chunks())

    assert sized.content == body
    assert chunked.content == body
    assert egress.session.stats().allowed == 2


async def test_a_10_mb_download_is_relayed_and_metered(
    open_egress: OpenEgress, origin: Origin
) -> None:
    egress = await open_egress([f"allowed.test:{origin.port}"], hosts=HOSTS)
    size = 10 * 1024 * 1024

    async with client(egress.url) as http:
        answer = await http.get(f"http://allowed.test:{origin.port}/bytes/{size}")

    assert answer.content == payload(size)
    stats = await egress.session.close()
    assert size <= stats.bytes_in <= size * 1.01
    assert stats.bytes_out == len(origin.heads[0])


async def test_http_1_0_is_forwarded_as_http_1_0(open_egress: OpenEgress, origin: Origin) -> None:
    egress = await open_egress([f"allowed.test:{origin.port}"], hosts=HOSTS)

    answer = await send_raw(
        egress.port, f"GET http://allowed.test:{origin.port}/head HTTP/1.0\r\n\r\n".encode()
    )

    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert origin.heads[0].startswith(b"GET /head HTTP/1.0\r\n")
    assert f"Host: allowed.test:{origin.port}".encode() in origin.heads[0]
