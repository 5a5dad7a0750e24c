"""After the platform dies mid-run: the sandbox dies with it, and its usage is still readable."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import textwrap
from pathlib import Path

from saassy.runtime.base import Limits
from saassy.runtime.process import ProcessRuntime
from saassy.runtime.sandbox import SHARED_ETC

PLATFORM = """
    import asyncio, sys
    from pathlib import Path
    from saassy.runtime.base import Limits, SandboxSpec
    from saassy.runtime.process import ProcessRuntime

    async def main():
        workspace = Path(sys.argv[1])
        runtime = ProcessRuntime()
        spec = SandboxSpec(
            name=sys.argv[2],
            argv=("/usr/bin/python3", "-c", "print('burning', flush=True)\\nwhile True: pass"),
            input_file=workspace / "input.json",
            output_dir=workspace / "output",
            limits=Limits(cpus=1, timeout_s=60),
        )
        handle = await runtime.start(spec)
        async for line in handle.output():
            print(line.data.decode(), flush=True)
            await asyncio.sleep(60)

    asyncio.run(main())
"""


async def test_a_crashed_platform_leaves_a_measurable_and_removable_sandbox(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    name = f"crash-{workspace.name}-{os.getpid()}"
    platform = await asyncio.create_subprocess_exec(
        sys.executable, "-c", textwrap.dedent(PLATFORM), str(workspace), name,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")},
    )  # fmt: skip
    assert platform.stdout is not None
    try:
        while (line := await asyncio.wait_for(platform.stdout.readline(), 10)) != b"burning\n":
            assert line, "the platform died before its sandbox ran"  # (its log lines come first)
        await asyncio.sleep(0.3)
    finally:
        platform.send_signal(signal.SIGKILL)
        await platform.wait()
    assert runtime.host is not None
    cgroup = runtime.host.cgroups.existing(name)
    assert cgroup is not None
    for _ in range(100):  # --die-with-parent: the sandbox follows the platform
        if not cgroup.pids():
            break
        await asyncio.sleep(0.02)
    assert cgroup.pids() == []
    usage = await runtime.recover(name)
    assert usage is not None
    assert usage.cpu_seconds > 0.1
    assert runtime.host.cgroups.existing(name) is None
    assert list(runtime.work_root.glob(f"{name}-*")) == []
    assert await runtime.recover(name) is None  # idempotent


async def test_sweep_frees_sandboxes_of_dead_platform_processes_only(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    dead = await asyncio.create_subprocess_exec("/bin/true")
    await dead.wait()
    assert runtime.host is not None
    stale = runtime.work_root / f"sweep-{workspace.name}@{dead.pid}-0000"
    (stale / "fs").mkdir(parents=True)
    stale_cgroup = runtime.host.cgroups.create(stale.name.partition("@")[0], Limits())
    stale_etc = runtime.work_root / f"{SHARED_ETC}@{dead.pid}-0000"
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
