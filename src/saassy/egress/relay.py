"""Bytes both ways between a sandbox's client and its destination, metered as they go.

Each direction reads into one preallocated buffer and writes it out in full before reading
again, so a slow reader holds back its writer instead of growing a queue: a connection costs two
buffers, whatever the peers do. The sockets are non-blocking and used directly (no streams): a
read goes into the buffer, a write sends a view of it, nothing is copied in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass

# Without a yield the pumps would never give the loop back while both sockets are ready.
YIELD_EVERY_CHUNKS = 8


@dataclass
class Meter:
    """Running figures of one session; the relay adds to them as bytes move."""

    bytes_out: int = 0
    bytes_in: int = 0
    allowed: int = 0
    refused: int = 0
    failed: int = 0


class _Activity:
    __slots__ = ("last",)

    def __init__(self, now: float) -> None:
        self.last = now


async def relay(
    client: socket.socket,
    upstream: socket.socket,
    meter: Meter,
    *,
    buffer_bytes: int,
    idle_timeout_s: float,
) -> None:
    """Relay until the destination closes, either side fails, or nothing moves for the timeout.

    The client may half-close (send its request, then shut down writing): the destination's
    answer still flows back. When the destination closes, the exchange is over.
    """
    loop = asyncio.get_running_loop()
    activity = _Activity(loop.time())
    outbound = asyncio.create_task(
        _pump(client, upstream, bytearray(buffer_bytes), meter, activity, outbound=True)
    )
    inbound = asyncio.create_task(
        _pump(upstream, client, bytearray(buffer_bytes), meter, activity, outbound=False)
    )
    running = {outbound, inbound}
    try:
        while inbound in running:
            idle_left = activity.last + idle_timeout_s - loop.time()
            if idle_left <= 0:
                return
            done, running = await asyncio.wait(
                running, timeout=idle_left, return_when=asyncio.FIRST_COMPLETED
            )
            if any(task.exception() is not None for task in done):
                return
    finally:
        for task in (outbound, inbound):
            task.cancel()
        await asyncio.gather(outbound, inbound, return_exceptions=True)


async def _pump(
    source: socket.socket,
    sink: socket.socket,
    buffer: bytearray,
    meter: Meter,
    activity: _Activity,
    *,
    outbound: bool,
) -> None:
    loop = asyncio.get_running_loop()
    view = memoryview(buffer)
    chunks = 0
    while received := await loop.sock_recv_into(source, buffer):
        await loop.sock_sendall(sink, view[:received])
        if outbound:
            meter.bytes_out += received
        else:
            meter.bytes_in += received
        activity.last = loop.time()
        chunks += 1
        if chunks % YIELD_EVERY_CHUNKS == 0:
            await asyncio.sleep(0)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
