"""Spawning a sandbox's first process, on the asyncio loop and on uvloop (uvicorn's choice)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from saassy.runtime.spawn import spawn

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}
SCRIPT = 'echo "out $GREETING"; echo "in $(pwd)" ; echo oops >&2; exit 7'


def run_on(loop: str, work: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        return runner.run(work)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("loop", LOOPS)
def test_exit_code_output_environment_and_directory(loop: str, tmp_path: Path) -> None:
    async def work() -> tuple[int, bytes, bytes, int | None]:
        env = {"GREETING": "hello", "PATH": "/usr/bin:/bin"}
        process = await spawn(["/bin/sh", "-c", SCRIPT], env=env, cwd=tmp_path)
        code = await process.wait()
        return code, await process.stdout.read(), await process.stderr.read(), process.returncode

    code, out, err, returncode = run_on(loop, work())

    assert (code, returncode) == (7, 7)
    assert out == f"out hello\nin {tmp_path}\n".encode()
    assert err == b"oops\n"


@pytest.mark.parametrize("loop", LOOPS)
def test_a_killed_process_reports_its_signal_and_leads_its_own_session(
    loop: str, tmp_path: Path
) -> None:
    async def work() -> tuple[int, int]:
        process = await spawn(["/bin/sleep", "30"], env={}, cwd=tmp_path)
        session = os.getsid(process.pid)
        os.kill(process.pid, signal.SIGKILL)
        return await asyncio.wait_for(process.wait(), 5), session == process.pid

    code, own_session = run_on(loop, work())

    assert code == -signal.SIGKILL
    assert own_session


def test_without_pidfds_a_thread_waits_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "pidfd_open")

    async def work() -> tuple[int, bytes]:
        process = await spawn(["/bin/sh", "-c", "echo done; exit 3"], env={}, cwd=tmp_path)
        return await asyncio.wait_for(process.wait(), 5), await process.stdout.read()

    assert run_on("asyncio", work()) == (3, b"done\n")


@pytest.mark.parametrize("loop", LOOPS)
def test_many_at_once_each_gets_its_own_output_and_no_descriptor_is_left_open(
    loop: str, tmp_path: Path
) -> None:
    # Pipes must be closed exactly once: a second close of a reused number broke another
    # spawn in flight (uvloop's pipe transport did that), so spawn many at once, threads and all.
    async def one(index: int) -> tuple[int, bytes]:
        script = f"echo {index}; exit {index % 7}"
        process = await spawn(["/bin/sh", "-c", script], env={}, cwd=tmp_path)
        return await process.wait(), await process.stdout.read()

    async def work() -> list[tuple[int, bytes]]:
        return await asyncio.gather(*(one(index) for index in range(200)))

    before = open_fds()
    results = run_on(loop, work())

    assert results == [(index % 7, f"{index}\n".encode()) for index in range(200)]
    assert open_fds() == before


def test_a_program_that_cannot_start_raises_and_leaves_nothing(tmp_path: Path) -> None:
    async def work() -> None:
        await spawn([str(tmp_path / "missing")], env={}, cwd=tmp_path)

    before = open_fds()
    with pytest.raises(FileNotFoundError):
        run_on("asyncio", work())
    assert open_fds() == before
