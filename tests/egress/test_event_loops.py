"""The proxy on uvloop (uvicorn's choice when installed) as on asyncio's own loop."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import uvloop

from saassy.egress import EgressPolicy, EgressProxy
from tests.egress.conftest import loopback_listener
from tests.egress.support import Echo, MappedResolver, Origin, open_tunnel, payload

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


async def download_and_tunnel() -> tuple[bytes, bytes, int, int]:
    origin, echo = await Origin().start(), await Echo().start()
    proxy = EgressProxy(MappedResolver(), hosts={"allowed.test": "127.0.0.1"})
    listener = loopback_listener()
    port = listener.getsockname()[1]
    policy = EgressPolicy.from_allow_list(
        [f"allowed.test:{origin.port}", f"allowed.test:{echo.port}"]
    )
    session = await proxy.attach("uvloop-sandbox", policy, listener)
    try:
        async with httpx.AsyncClient(proxy=f"http://127.0.0.1:{port}", trust_env=False) as http:
            body = (await http.get(f"http://allowed.test:{origin.port}/bytes/3000000")).content
        tunnel = await open_tunnel(port, f"allowed.test:{echo.port}")
        tunnel.writer.write(b"ping")
        tunnel.writer.write_eof()
        echoed = await tunnel.reader.read()
        await tunnel.close()
    finally:
        stats = await session.close()
        await origin.stop()
        await echo.stop()
    return body, echoed, stats.allowed, stats.bytes_out


@pytest.mark.parametrize("loop", LOOPS)
def test_a_download_and_a_tunnel_on_each_loop(loop: str) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        body, echoed, allowed, bytes_out = runner.run(download_and_tunnel())

    assert body == payload(3_000_000)
    assert echoed == b"ping"
    assert allowed == 2
    assert bytes_out > 4
