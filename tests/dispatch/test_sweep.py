"""An engine starting after a crash frees what the dead process's sandboxes left behind."""

from __future__ import annotations

import os
import socket
import subprocess
from datetime import timedelta
from pathlib import Path

from saassy.context import AppContext
from saassy.dispatch.repository import DispatchRepository
from saassy.dispatch.supervisor import sandbox_name
from saassy.kit.time import utcnow
from saassy.runtime.process import ProcessRuntime
from tests.conftest import SignUp
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import insert_tasks


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


async def test_engine_start_leaves_unadopted_attempts_sandboxes_for_adoption(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory, tmp_path: Path
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    async with ctx.sessionmaker() as session, session.begin():  # a dead process's, still leased
        await DispatchRepository(session).claim(
            [task_id],
            executor_id=f"local:{socket.gethostname()}:1:dead",
            now=utcnow(),
            lease=timedelta(seconds=30),
            running=True,
        )
    runtime = ProcessRuntime(force_rlimits=True, work_dir=tmp_path / "sandboxes")
    dead = _dead_pid()
    unadopted = runtime.work_root / f"{sandbox_name(task_id, 1)}@{dead}-0000"
    settled = runtime.work_root / f"{sandbox_name(task_id, 0)}@{dead}-0000"
    for leftover in (unadopted, settled):
        (leftover / "out").mkdir(parents=True)

    engine = engine_factory(runtime)
    await engine.start()
    assert engine._sweeper is not None
    await engine._sweeper

    assert unadopted.exists()  # its usage is adoption's to measure once the lease runs out
    assert not settled.exists()
