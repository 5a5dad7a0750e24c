"""The bench's metrics can fail: a sandbox start slowed on purpose shows in submit->running.

No timing of the real system is asserted: the server's runtime sleeps 50 ms before each start
(bench/slowed.py), and the metric, which ends at the program's first instruction, must see it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from bench.engine_runs import EngineSizes, submit_to_running
from bench.headline import summarize
from bench.server import ServerProcess
from bench.slowed import DELAY_VARIABLE
from bench.stage import scratch_stage

from saassy.runtime.process import ProcessRuntime
from tests.runtime.conftest import require_isolation

DELAY_MS = 50


@pytest.mark.timeout(120)
def test_submit_to_running_sees_a_slowed_sandbox_start(tmp_path: Path) -> None:
    require_isolation(ProcessRuntime())
    sizes = EngineSizes(latency_samples=5)
    with scratch_stage(2, None, "slowed") as stage:
        env = stage.server_env() | {DELAY_VARIABLE: str(DELAY_MS)}
        with ServerProcess(env, tmp_path / "server.log") as server:
            numbers = asyncio.run(submit_to_running(server, stage, sizes))

    assert numbers["submit_to_running_p50_ms"] >= DELAY_MS
    # Every sample, by the server's clocks: a client stalled after the 202 (a garbage collection
    # in a busy test process) starts its own sample late, so it may undercount that one.
    assert numbers["created_to_running_min_sample_ms"] >= DELAY_MS
    assert numbers["created_to_running_p50_ms"] >= DELAY_MS


def test_repetitions_keep_median_and_range() -> None:
    runs = [{"ratio": 1.0}, {"ratio": 3.0}, {"ratio": 2.0}]

    assert summarize(runs) == {
        "repetitions": 3.0,
        "ratio": 2.0,
        "ratio_min": 1.0,
        "ratio_max": 3.0,
    }
