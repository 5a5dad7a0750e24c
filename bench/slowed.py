"""A deliberately slowed sandbox start, to prove the bench's submit->running can fail.

`SAASSY_BENCH_START_DELAY_MS=50` in a bench server's environment (bench/server.py) makes every
sandbox the engine starts wait that long before the real runtime starts it: the program begins
that much later, and a metric that measures up to the program's first instruction must see it
(tests/bench/test_bench_metric.py). Never set outside that test.
"""

from __future__ import annotations

import asyncio
import os

import saassy.app
from saassy.config import Settings
from saassy.runtime.base import Runtime, SandboxHandle, SandboxSpec

DELAY_VARIABLE = "SAASSY_BENCH_START_DELAY_MS"


def install_start_delay_from_env() -> None:
    """Wrap the runtime the app builds, when the variable asks for a delay."""
    delay_ms = float(os.environ.get(DELAY_VARIABLE, "0"))
    if delay_ms <= 0:
        return
    build = saassy.app.build_runtime

    def build_slowed(settings: Settings) -> Runtime:
        return slowed(build(settings), delay_ms / 1000)

    saassy.app.build_runtime = build_slowed


def slowed(runtime: Runtime, delay_s: float) -> Runtime:
    """`runtime`, whose `start` first sleeps `delay_s`; everything else is its own."""
    start = runtime.start

    async def slowed_start(spec: SandboxSpec) -> SandboxHandle:
        await asyncio.sleep(delay_s)
        return await start(spec)

    runtime.start = slowed_start  # type: ignore[method-assign]
    return runtime
