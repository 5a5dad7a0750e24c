"""An engine starting after a crash frees what the dead process's sandboxes left behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from saassy.runtime.process import ProcessRuntime
from tests.dispatch.conftest import EngineFactory


def _dead_pid() -> int:
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    return child.pid


async def test_engine_start_sweeps_leftovers_of_dead_processes(
    engine_factory: EngineFactory, tmp_path: Path
) -> None:
    runtime = ProcessRuntime(force_rlimits=True, work_dir=tmp_path / "sandboxes")
    orphan = runtime.work_root / f"task-a-attempt-1@{_dead_pid()}-0000"
    mine = runtime.work_root / f"task-b-attempt-1@{os.getpid()}-0000"
    for leftover in (orphan, mine):
        (leftover / "out").mkdir(parents=True)

    engine = engine_factory(runtime)
    await engine.start()
    assert engine._sweeper is not None
    await engine._sweeper

    assert not orphan.exists()
    assert mine.exists()  # its owner (this process) is alive: not ours to free
