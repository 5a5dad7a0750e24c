"""Real loopback servers for the proxy to reach, a raw CONNECT client, and a mapped resolver."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Self

from saassy.egress.destination import IPAddress
from saassy.egress.resolver import ResolveFailed

PATTERN = bytes(range(256)) * 4096  # 1 MiB that reveals a shifted or dropped byte


def payload(size: int) -> bytes:
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


class LoopbackServer:
    """A server on a free loopback port; subclasses answer connections in `_serve`."""

    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> Self:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


@dataclass
class Origin(LoopbackServer):
    """An HTTP/1.1 server: `/bytes/<n>` answers n bytes, `/head` the request head, `/echo` the
    body; it records every head it received."""

    heads: list[bytes] = field(default_factory=list)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            path = head.split(b" ", 2)[1].split(b"?")[0]
            headers = header_map(head)
            body = b""
            if b"content-length" in headers:
                body = await reader.readexactly(int(headers[b"content-length"]))
            elif headers.get(b"transfer-encoding") == b"chunked":
                body = await read_chunked(reader)
            if path.startswith(b"/bytes/"):
                answer = payload(int(path.removeprefix(b"/bytes/")))
            else:
                answer = head if path == b"/head" else body
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(answer))
            for start in range(0, len(answer), 1 << 20):
                writer.write(answer[start : start + (1 << 20)])
                await writer.drain()
        writer.close()


def header_map(head: bytes) -> dict[bytes, bytes]:
    lines = head.split(b"\r\n")[1:]
    pairs = (line.split(b":", 1) for line in lines if b":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while size := int((await reader.readline()).strip(), 16):
        body += await reader.readexactly(size)
        await reader.readline()
    await reader.readline()
    return body


@dataclass
class Echo(LoopbackServer):
    """A TCP server that sends back what it reads; counts the connections it accepted."""

    connections: int = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


class MappedResolver:
    """A resolver for tests: names to the addresses given, anything else does not exist."""

    def __init__(self, names: Mapping[str, list[str]] | None = None) -> None:
        self.names = {
            name: [ip_address(a) for a in addresses] for name, addresses in (names or {}).items()
        }
        self.lookups: list[str] = []

    async def resolve(self, host: str) -> list[IPAddress]:
        self.lookups.append(host)
        if host not in self.names:
            raise ResolveFailed(host, "no such name")
        return list(self.names[host])


@dataclass
class Tunnel:
    status: int
    answer: bytes  # the proxy's whole answer when it was not 200
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def open_tunnel(proxy_port: int, target: str, *, early: bytes = b"") -> Tunnel:
    """`CONNECT target` through the proxy, as a TLS-less client would; `early` follows the head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode() + early)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    tunnel = Tunnel(status, b"", reader, writer)
    if status != 200:
        tunnel.answer = head + await reader.read()
        await tunnel.close()
    return tunnel


async def send_raw(proxy_port: int, data: bytes) -> bytes:
    """Send bytes to the proxy, then read its whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy_port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return answer


async def tunnel_status(proxy_port: int, target: str) -> int:
    """The proxy's answer to `CONNECT target`; the tunnel, if any, is closed at once."""
    tunnel = await open_tunnel(proxy_port, target)
    await tunnel.close()
    return tunnel.status
