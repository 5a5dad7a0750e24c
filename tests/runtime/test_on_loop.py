"""A sandbox that carries little in and leaves little behind is launched and taken on the loop
(a hop to a worker thread costs more than such work); what a tenant can make large still goes to
a worker thread, so the loop is never held for long."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from saassy.kit.threads import SMALL_BYTES
from saassy.runtime import child_limits, mounts
from saassy.runtime.process import ProcessRuntime
from saassy.runtime.sandbox import NamespaceSandbox
from tests.runtime.conftest import require_isolation
from tests.runtime.support import run_code

WRITE_OUTPUT = """
    import os
    with open(os.environ["SAASSY_OUTPUT"] + "/out.bin", "wb") as out:
        out.write(b"x" * {size})
"""


@pytest.fixture
def on_loop(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """Where the launch's preparation and the end's collection ran: on the loop's thread?"""
    loop_thread = threading.current_thread()
    seen: dict[str, bool] = {}

    def watched(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def run(self: NamespaceSandbox, *args: Any) -> Any:
            seen[name] = threading.current_thread() is loop_thread
            return method(self, *args)

        return run

    for name in ("_prepare", "_collect"):
        monkeypatch.setattr(NamespaceSandbox, name, watched(name, getattr(NamespaceSandbox, name)))
    return seen


async def test_a_small_run_is_launched_and_taken_on_the_loop(
    runtime: ProcessRuntime, workspace: Path, on_loop: dict[str, bool]
) -> None:
    run = await run_code(runtime, workspace, WRITE_OUTPUT.format(size=1000))
    assert run.exit.exit_code == 0
    assert on_loop == {"_prepare": True, "_collect": True}
    assert (workspace / "output" / "out.bin").stat().st_size == 1000


async def test_a_large_output_is_taken_on_a_worker_thread(
    runtime: ProcessRuntime, workspace: Path, on_loop: dict[str, bool]
) -> None:
    run = await run_code(runtime, workspace, WRITE_OUTPUT.format(size=2 * SMALL_BYTES))
    assert run.exit.exit_code == 0
    assert on_loop == {"_prepare": True, "_collect": False}
    assert (workspace / "output" / "out.bin").stat().st_size == 2 * SMALL_BYTES


async def test_a_large_input_is_carried_in_from_a_worker_thread(
    runtime: ProcessRuntime, workspace: Path, on_loop: dict[str, bool]
) -> None:
    (workspace / "input.json").write_text(json.dumps({"blob": "x" * SMALL_BYTES}))
    run = await run_code(runtime, workspace, WRITE_OUTPUT.format(size=10))
    assert run.exit.exit_code == 0
    assert on_loop["_prepare"] is False


EMPTY_FILES = """
    import os
    for n in range({count}):
        open(os.environ["SAASSY_OUTPUT"] + f"/{{n}}", "w").close()
"""


async def test_many_empty_files_are_taken_on_a_worker_thread(
    runtime: ProcessRuntime, workspace: Path, on_loop: dict[str, bool]
) -> None:
    # An empty file takes no block of a tmpfs: thousands of them looked "little" to the bytes
    # used, and were copied to the host one by one on the loop every tenant shares.
    run = await run_code(runtime, workspace, EMPTY_FILES.format(count=2000))
    assert run.exit.exit_code == 0
    assert on_loop == {"_prepare": True, "_collect": False}
    assert len(list((workspace / "output").iterdir())) == 2000


async def test_a_launch_that_counts_its_uids_threads_is_prepared_on_a_worker_thread(
    runtime: ProcessRuntime,
    workspace: Path,
    on_loop: dict[str, bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A non-root platform's sandboxes share its uid: each launch scans /proc for that uid's
    # threads, a scan as long as the tenants' running sandboxes (up to their pids) make it.
    monkeypatch.setattr(child_limits, "counts_uid_threads", lambda: True)
    run = await run_code(runtime, workspace, WRITE_OUTPUT.format(size=10))
    assert run.exit.exit_code == 0
    assert on_loop["_prepare"] is False


async def test_a_disk_work_dir_is_prepared_on_a_worker_thread(
    workspace: Path, on_loop: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no tmpfs can be mounted (any non-root platform) the work dir is on disk, where each
    file made is a journaled write: however little it carries, its launch stays off the loop."""
    monkeypatch.setattr(mounts, "can_mount_tmpfs", lambda _: False)
    root = Path(tempfile.mkdtemp(prefix="saassy-sandboxes-test-"))
    try:
        runtime = ProcessRuntime(use_cgroups=False, work_dir=root)
        require_isolation(runtime, cgroups=False)
        run = await run_code(runtime, workspace, WRITE_OUTPUT.format(size=10))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert run.exit.exit_code == 0
    assert on_loop == {"_prepare": False, "_collect": False}
