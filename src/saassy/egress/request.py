"""Reading a sandbox's request to the proxy: `CONNECT host:port` or an absolute-form HTTP request.

h11 parses the head (bounded: a larger head is 431); the proxy reads nothing past it, so the
body and anything else the client sends are relayed as bytes. A plain HTTP request is forwarded
in origin-form with hop-by-hop and `Proxy-*` headers removed and `Connection: close`.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import h11

from saassy.egress.destination import Destination, bracketed, parse_authority
from saassy.egress.refusal import Refused

READ_BYTES = 16 * 1024
HTTP_PORT = 80
HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"te", b"trailer", b"upgrade", b"host", b"proxy-connection"}
)
# Kept even when `Connection` lists them: the body is relayed as the client framed it.
FRAMING = frozenset({b"content-length", b"transfer-encoding"})


@dataclass(frozen=True)
class ProxyRequest:
    destination: Destination
    tunnel: bool  # CONNECT: answer 200, then relay bytes
    head: bytes  # the head to send upstream (plain HTTP); empty for a tunnel
    early_data: bytes  # what the client sent after its head, before any answer


async def read_request(client: socket.socket, max_head_bytes: int) -> ProxyRequest | None:
    """The client's request, None if it closed without one; Refused for a bad or huge head."""
    loop = asyncio.get_running_loop()
    parser = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head_bytes)
    while True:
        try:
            event = parser.next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:
                raise Refused(431, f"request head larger than {max_head_bytes} bytes") from None
            raise Refused(400, "malformed HTTP request") from None
        if event is h11.NEED_DATA:
            parser.receive_data(await loop.sock_recv(client, READ_BYTES))
        elif isinstance(event, h11.Request):
            return _proxy_request(event, parser.trailing_data[0])
        else:
            return None  # ConnectionClosed before a request


def _proxy_request(request: h11.Request, early_data: bytes) -> ProxyRequest:
    try:
        target = request.target.decode("ascii")
    except UnicodeDecodeError:
        raise Refused(400, "the request target is not ASCII") from None
    if request.method == b"CONNECT":
        try:
            return ProxyRequest(parse_authority(target, None), True, b"", early_data)
        except ValueError as exc:
            raise Refused(400, f"CONNECT needs host:port ({exc})") from None
    authority, path = _split_absolute(target)
    try:
        destination = parse_authority(authority, HTTP_PORT)
    except ValueError as exc:
        raise Refused(400, f"bad host in the request URL ({exc})") from None
    head = _forwarded_head(request, destination, path)
    return ProxyRequest(destination, False, head, early_data)


def _split_absolute(target: str) -> tuple[str, str]:
    scheme, separator, rest = target.partition("://")
    if not separator or scheme.lower() != "http":
        if scheme.lower() == "https":
            raise Refused(400, "https:// goes through CONNECT (set HTTPS_PROXY)")
        raise Refused(400, "send requests in absolute form (GET http://host/path) or CONNECT")
    end = next((i for i, char in enumerate(rest) if char in "/?#"), len(rest))
    authority, path = rest[:end], rest[end:].partition("#")[0]
    if "@" in authority:
        raise Refused(400, "a URL with user info is not forwarded")
    return authority, path if path.startswith("/") else "/" + path


def _forwarded_head(request: h11.Request, destination: Destination, path: str) -> bytes:
    framing = [name for name, _ in request.headers if name in FRAMING]
    if len(framing) > 1:  # RFC 9112 6.3: the two together are how requests are smuggled
        raise Refused(400, "a request with both Content-Length and Transfer-Encoding")
    listed = {
        token.strip().lower()
        for name, value in request.headers
        if name == b"connection"
        for token in value.split(b",")
    } - FRAMING
    host = bracketed(destination.host)
    if destination.port != HTTP_PORT:
        host += f":{destination.port}"
    lines = [
        request.method + b" " + path.encode() + b" HTTP/" + request.http_version,
        b"Host: " + host.encode(),
    ]
    for name, value in request.headers.raw_items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in listed or lower.startswith(b"proxy-"):
            continue
        lines.append(name + b": " + value)
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"
