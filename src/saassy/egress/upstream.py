"""Opening the connection to a destination, at an address the gate has already checked."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Sequence

from saassy.egress.destination import Destination, IPAddress
from saassy.egress.refusal import Outcome, Refused

Connector = Callable[[IPAddress, int], Awaitable[socket.socket]]


async def open_tcp(address: IPAddress, port: int) -> socket.socket:
    """A connected non-blocking TCP socket; the address is a literal, so nothing is resolved."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.get_running_loop().sock_connect(sock, (str(address), port))
    except BaseException:
        sock.close()
        raise
    return sock


async def connect_first(
    connect: Connector, destination: Destination, addresses: Sequence[IPAddress], timeout_s: float
) -> socket.socket:
    """The first address that accepts, in order, all within one timeout; else Refused 502/504."""
    errors: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            for address in addresses:
                try:
                    return await connect(address, destination.port)
                except OSError as exc:
                    errors.append(os.strerror(exc.errno) if exc.errno else str(exc))
    except TimeoutError:
        message = f"{destination} did not answer within {timeout_s:g} s"
        raise Refused(504, message, Outcome.failed) from None
    why = errors[-1].lower() if errors else "no address"
    raise Refused(502, f"{destination} is unreachable ({why})", Outcome.failed)
