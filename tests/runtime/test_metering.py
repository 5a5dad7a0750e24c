"""Metering must-holds: the bill is the kernel's figure, whoever in the tree burned it, on
either runtime (the process runtime's bwrap binaries and docker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from saassy.runtime.base import Runtime
from saassy.runtime.container import ContainerSandbox
from saassy.runtime.sandbox import NamespaceSandbox
from tests.runtime.support import run_code


@pytest.fixture
def runtime(any_runtime: Runtime) -> Runtime:
    return any_runtime


async def test_cpu_of_a_double_forked_grandchild_is_billed(
    runtime: Runtime, workspace: Path
) -> None:
    code = """
        import os, time
        done_r, done_w = os.pipe()
        if os.fork() == 0:
            if os.fork() == 0:
                os.close(done_r)
                start = time.process_time()
                while time.process_time() - start < 1.0:
                    pass
                print("grandchild", time.process_time(), flush=True)
                os._exit(0)
            os._exit(0)
        os.close(done_w)
        os.wait()
        os.read(done_r, 1)  # EOF once the reparented grandchild has exited
    """
    run = await run_code(runtime, workspace, code, cleanup=False, cpus=1, timeout_s=15)
    handle = run.handle
    assert isinstance(handle, NamespaceSandbox | ContainerSandbox)
    assert handle.cgroup is not None
    assert run.exit.succeeded, run.stderr
    kernel_figure = handle.cgroup.cpu_seconds()
    grandchild_figure = float(run.stdout[0].split()[1])
    await handle.cleanup()
    assert abs(run.usage.cpu_seconds - kernel_figure) <= 0.1 * kernel_figure
    assert abs(run.usage.cpu_seconds - grandchild_figure) <= 0.1 * grandchild_figure
    assert 0.9 <= run.usage.cpu_seconds <= 1.5


async def test_peak_memory_matches_a_known_allocation(runtime: Runtime, workspace: Path) -> None:
    size = 200 * 1024 * 1024
    code = f"""
        block = bytearray({size})
        for i in range(0, len(block), 4096):
            block[i] = 1
        print("touched", len(block))
    """
    run = await run_code(runtime, workspace, code, memory_mb=512, timeout_s=20)
    assert run.exit.succeeded, run.stderr
    assert abs(run.usage.peak_memory_bytes - size) <= 0.1 * size
    assert run.usage.wall_seconds > 0
