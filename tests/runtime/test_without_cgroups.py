"""Namespaces without writable cgroups (a non-root user's machine): still closed, the tree still
ends, processes capped by RLIMIT_NPROC, CPU and memory sampled. Runs wherever bwrap can make
namespaces, root or not (as root, cgroups are left out on purpose)."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path

import pytest

from saassy.runtime.base import EndReason, IsolationLevel
from saassy.runtime.process import ProcessRuntime
from tests.runtime.conftest import require_isolation
from tests.runtime.support import run_code
from tests.runtime.test_abuse import is_sandbox_uid


@pytest.fixture(scope="module")
def runtime() -> ProcessRuntime:
    root = Path(tempfile.mkdtemp(prefix="saassy-sandboxes-test-"))
    runtime = ProcessRuntime(use_cgroups=False, work_dir=root)
    require_isolation(runtime, cgroups=False)
    assert runtime.isolation is IsolationLevel.namespaces
    return runtime


def test_it_says_what_is_not_enforced_or_measured(runtime: ProcessRuntime) -> None:
    summary = runtime.summary()
    assert "no writable cgroups" in summary
    assert "not enforced: memory" in summary
    assert "sampled every 0.1 s" in summary


async def test_the_program_is_closed_in_as_with_cgroups(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = f"""
            import os, socket
            print(os.getuid())
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=1)
                print("reached the host")
            except OSError:
                print("no host")
            for path in ("/etc/x", "/usr/x"):
                try:
                    open(path, "w")
                    print("wrote", path)
                except OSError:
                    print("read-only")
        """
        run = await run_code(runtime, workspace, code)
    assert is_sandbox_uid(int(run.stdout[0]))
    assert run.stdout[1:] == ["no host", "read-only", "read-only"]


async def test_a_timeout_ends_the_whole_tree_and_its_cpu_is_sampled(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import os
        if os.fork() == 0:
            os.setsid()
            while True:
                pass
        hoard = bytearray(64 * 1024 * 1024)
        while True:
            pass
    """
    run = await run_code(runtime, workspace, code, cpus=1, memory_mb=256, timeout_s=2)
    assert run.exit.reason is EndReason.timed_out
    assert run.usage.cpu_seconds > 0.5  # what /proc showed the tree burn
    assert run.usage.peak_memory_bytes > 64 * 1024 * 1024  # the hoard, sampled


async def test_memory_is_capped_per_process(runtime: ProcessRuntime, workspace: Path) -> None:
    run = await run_code(runtime, workspace, "bytearray(512 * 1024 * 1024)", memory_mb=128)
    assert not run.exit.succeeded
    assert any("MemoryError" in line for line in run.stderr)


async def test_a_fork_bomb_is_stopped_by_the_process_limit(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    code = """
        import os, time
        children = 0
        for _ in range(200):
            try:
                if os.fork() == 0:
                    time.sleep(5)
                    os._exit(0)
                children += 1
            except OSError:
                break
        print(children, flush=True)
        os._exit(0)
    """
    run = await run_code(runtime, workspace, code, pids=16, timeout_s=10)
    assert run.exit.succeeded, run.stderr
    assert 0 < int(run.stdout[0]) < 16
