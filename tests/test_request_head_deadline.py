"""A request head must arrive in time: a client that opens connections and sends half a head
(or nothing) gets 408 and is closed, instead of holding a file descriptor for ever."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from saassy.app import create_app
from saassy.config import Settings
from saassy.kit.request_head import BoundedHeadProtocol
from tests.processes import serving


async def answer_to(port: int, sent: bytes, *, then_wait_s: float = 0.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(sent)
        await writer.drain()
        await asyncio.sleep(then_wait_s)
        async with asyncio.timeout(10):
            return await reader.read()  # until the server closes
    finally:
        writer.close()


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BoundedHeadProtocol, "head_timeout_s", 0.5)


@pytest.mark.usefixtures("short_deadline")
async def test_a_head_that_never_completes_gets_408_and_the_connection_closes(
    settings_factory: Callable[..., Settings],
) -> None:
    app = create_app(settings_factory(), background=False)
    async with app.router.lifespan_context(app), serving(app) as url:
        port = int(url.rsplit(":", 1)[1])
        half = await answer_to(port, b"GET /health HTTP/1.1\r\nHost: x\r\n")
        silent = await answer_to(port, b"")
        whole = await answer_to(
            port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", then_wait_s=1
        )
    for answer in (half, silent):
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b'"code":"request_timeout"' in answer.replace(b" ", b"")
    # A head that arrived in time is answered, however long the client then takes to read.
    assert whole.startswith(b"HTTP/1.1 200 "), whole
