"""The fallback without bubblewrap or cgroups: it runs, says what it is, and still ends things."""

from __future__ import annotations

import time
from pathlib import Path

from saassy.runtime.base import EndReason, IsolationLevel
from saassy.runtime.process import ProcessRuntime, detect_runtime
from tests.runtime.support import run_code


async def test_rlimits_fallback_runs_a_program_and_reports_its_isolation(
    workspace: Path,
) -> None:
    runtime = ProcessRuntime(force_rlimits=True)
    assert runtime.isolation is IsolationLevel.rlimits
    assert runtime.describe()["isolation"] == "rlimits"
    assert runtime.describe()["isolates_network"] is False
    code = """
        import json, os
        data = json.load(open(os.environ["SAASSY_INPUT"]))
        open(os.environ["SAASSY_OUTPUT"] + "/result.json", "w").write(json.dumps(data))
        print("ok", "SAASSY_CANARY" in os.environ)
        x = 0
        for i in range(3_000_000):
            x += i
    """
    run = await run_code(runtime, workspace, code)
    assert run.exit.succeeded, run.stderr
    assert run.stdout == ["ok False"]
    assert (workspace / "output" / "result.json").read_text() == '{"hello": "sandbox"}'
    assert 0 < run.usage.cpu_seconds < 5
    assert run.usage.peak_memory_bytes > 1024 * 1024


async def test_rlimits_fallback_kills_its_group_on_timeout(workspace: Path) -> None:
    runtime = ProcessRuntime(force_rlimits=True)
    code = """
        import os, time
        os.fork()
        while True:
            time.sleep(0.01)
    """
    started = time.monotonic()
    run = await run_code(runtime, workspace, code, timeout_s=1)
    assert run.exit.reason is EndReason.timed_out
    assert time.monotonic() - started < 4


async def test_rlimits_memory_cap_stops_an_allocation(workspace: Path) -> None:
    runtime = ProcessRuntime(force_rlimits=True)
    run = await run_code(runtime, workspace, "bytearray(512 * 1024 * 1024)", memory_mb=128)
    assert not run.exit.succeeded
    assert any("MemoryError" in line for line in run.stderr)


def test_detect_runtime_picks_the_strongest_available() -> None:
    runtime = detect_runtime()
    assert runtime.describe()["runtime"] == "process"
    # Never the unisolated runner unless asked for: a host without a sandbox refuses instead.
    assert runtime.isolation is not IsolationLevel.rlimits
