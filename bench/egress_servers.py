"""The processes the egress benchmark talks to: a loopback origin and the proxy under test.

Each runs in its own process with its own event loop, as the proxy does in the platform (one
loop, one session per sandbox listener), so the client's work is not counted against either.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from multiprocessing.connection import Connection

import structlog
import uvloop

from saassy.egress import EgressPolicy, EgressProxy, SystemResolver

ORIGIN_NAME = "origin.bench"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def answer_for(size: int) -> bytes:
    """The origin's whole answer to `GET /bytes/<size>`: a head and `size` bytes."""
    return HEAD % size + bytes(size)


def _listener() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.setblocking(False)
    return listener


def run_origin(pipe: Connection, sizes: list[int]) -> None:
    """Serve `GET /bytes/<n>` for the given sizes until terminated; send the port first."""
    listener = _listener()
    pipe.send(listener.getsockname()[1])
    answers = {b"/bytes/%d" % size: answer_for(size) for size in sizes}
    asyncio.run(_serve_origin(listener, answers))


async def _serve_origin(listener: socket.socket, answers: dict[bytes, bytes]) -> None:
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    while True:
        client, _ = await loop.sock_accept(listener)
        task = asyncio.create_task(_answer(client, answers))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _answer(client: socket.socket, answers: dict[bytes, bytes]) -> None:
    loop = asyncio.get_running_loop()
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    head = b""
    try:
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(client, 65536)
            if not chunk:
                return
            head += chunk
        path = head.split(b" ", 2)[1]
        await loop.sock_sendall(client, answers.get(path, HEAD % 0))
    finally:
        client.close()


def run_proxy(pipe: Connection, origin_port: int, loop: str) -> None:
    """One proxy session allowing the origin; send the port, and the stats when told to stop."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(_serve_proxy(pipe, origin_port))


async def _serve_proxy(pipe: Connection, origin_port: int) -> None:
    proxy = EgressProxy(SystemResolver(), hosts={ORIGIN_NAME: "127.0.0.1"})
    listener = _listener()
    policy = EgressPolicy.from_allow_list([f"{ORIGIN_NAME}:{origin_port}"])
    session = await proxy.attach("bench", policy, listener)
    pipe.send(listener.getsockname()[1])
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # until told to stop
    stats = await session.close()
    pipe.send(
        {"allowed": stats.allowed, "refused": stats.refused + stats.failed,
         "bytes_in": stats.bytes_in, "bytes_out": stats.bytes_out}
    )  # fmt: skip
