"""After the platform dies mid-run: the sandbox dies with it, and its usage is still readable."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from saassy.runtime.base import Limits
from saassy.runtime.cgroups import SandboxCgroup
from saassy.runtime.host import STAGE_PREFIX
from saassy.runtime.process import ProcessRuntime
from tests.runtime.conftest import require_isolation
from tests.runtime.support import leave_burning_sandbox, own_process_runtime


async def wait_until_empty(cgroup: SandboxCgroup) -> None:
    for _ in range(100):  # --die-with-parent: the sandbox follows the platform
        if not cgroup.pids():
            return
        await asyncio.sleep(0.02)
    assert cgroup.pids() == []


async def test_a_crashed_platform_leaves_a_measurable_and_removable_sandbox(
    workspace: Path,
) -> None:
    name = f"crash-{workspace.name}-{os.getpid()}"
    async with own_process_runtime() as runtime:
        require_isolation(runtime)
        await leave_burning_sandbox(workspace, name, runtime.work_root)
        assert runtime.host is not None
        cgroup = runtime.host.cgroups.existing(name)
        assert cgroup is not None
        await wait_until_empty(cgroup)
        usage = await runtime.recover(name)
        assert usage is not None
        assert usage.cpu_seconds > 0.1
        assert runtime.host.cgroups.existing(name) is None
        assert list(runtime.work_root.glob(f"{name}@*")) == []
        assert await runtime.recover(name) is None  # idempotent


async def test_a_leftover_measures_the_same_until_it_is_recovered(workspace: Path) -> None:
    name = f"measure-{workspace.name}-{os.getpid()}"
    async with own_process_runtime() as runtime:
        require_isolation(runtime)
        await leave_burning_sandbox(workspace, name, runtime.work_root)
        assert runtime.host is not None
        first = await runtime.end_leftover(name)
        again = await runtime.end_leftover(name)  # e.g. an adoption rolled back, then retried
        assert first is not None
        assert first.cpu_seconds > 0.1
        assert again == first
        assert runtime.host.cgroups.existing(name) is not None
        assert list(runtime.work_root.glob(f"{name}@*")) != []
        recovered = await runtime.recover(name)
        assert recovered is not None
        assert recovered.cpu_seconds == first.cpu_seconds
        assert runtime.host.cgroups.existing(name) is None
        assert list(runtime.work_root.glob(f"{name}@*")) == []


async def test_sweep_spares_the_accounting_of_sandboxes_adoption_has_yet_to_measure(
    tmp_path: Path,
) -> None:
    names = [f"sweep-{kind}-{tmp_path.name}-{os.getpid()}" for kind in ("kept", "freed")]
    async with own_process_runtime() as runtime:
        require_isolation(runtime)
        assert runtime.host is not None
        for name in names:
            workspace = tmp_path / name
            workspace.mkdir()
            (workspace / "input.json").write_text("{}")
            await leave_burning_sandbox(workspace, name, runtime.work_root)
        kept, freed = names
        assert await runtime.sweep(keep=[kept]) >= 1
        assert runtime.host.cgroups.existing(freed) is None
        assert list(runtime.work_root.glob(f"{freed}@*")) == []
        cgroup = runtime.host.cgroups.existing(kept)
        assert cgroup is not None
        assert cgroup.pids() == []
        usage = await runtime.recover(kept)
        assert usage is not None
        assert usage.cpu_seconds > 0.1


async def test_sweep_frees_sandboxes_of_dead_platform_processes_only(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    dead = await asyncio.create_subprocess_exec("/bin/true")
    await dead.wait()
    assert runtime.host is not None
    stale = runtime.work_root / f"sweep-{workspace.name}@{dead.pid}-0000"
    (stale / "fs").mkdir(parents=True)
    stale_cgroup = runtime.host.cgroups.create(stale.name.partition("@")[0], Limits())
    stale_etc = runtime.work_root / f"{STAGE_PREFIX}@{dead.pid}-0000"  # a staged bwrap
    stale_etc.mkdir()
    live = runtime.work_root / f"sweep-live-{workspace.name}@{os.getpid()}-0000"
    (live / "fs").mkdir(parents=True)
    try:
        assert await runtime.sweep() >= 2
        assert not stale.exists()
        assert not stale_etc.exists()
        assert runtime.host.cgroups.existing(stale.name.partition("@")[0]) is None
        assert live.exists()
    finally:
        shutil.rmtree(live)
        stale_cgroup.remove()
