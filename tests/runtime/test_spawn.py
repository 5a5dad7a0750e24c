"""Spawning a sandbox's first process, on the asyncio loop and on uvloop (uvicorn's choice)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from saassy.runtime.spawn import Launch, spawn, spawn_prepared

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


@pytest.fixture(autouse=True, scope="module")
def _uvloop_warmed_up() -> None:
    """uvloop keeps a pipe of its own, opened the first time a loop uses a worker thread: open
    it before any test counts descriptors, so that a test run alone counts only its own."""

    async def hop() -> None:
        await asyncio.to_thread(lambda: None)

    run_on("uvloop", hop())


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


def children() -> set[int]:
    """Our child processes, zombies included (a child never reaped is one); earlier tests in
    this process may have left some of their own, so compare with a count taken before."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                    found.add(int(entry))
    return found


@pytest.mark.parametrize("loop", LOOPS)
def test_cancelled_while_preparing_the_child_it_starts_is_killed_and_reaped(
    loop: str, tmp_path: Path
) -> None:
    # The preparation runs on a worker thread that a cancellation cannot stop: the thread goes
    # on and starts the child, which nobody would own, so the cancelled spawn kills and reaps it.
    # It goes on only once cancelled, however slow the machine: a fixed sleep could end
    # before the cancellation, and the spawn would succeed.
    preparing = threading.Event()
    go = threading.Event()

    def prepare() -> Launch:
        preparing.set()
        go.wait(10)
        return Launch(["/bin/sh", "-c", "sleep 30 & exec sleep 30"])

    async def work() -> None:
        spawning = asyncio.ensure_future(spawn_prepared(prepare, env={}, cwd=tmp_path))
        await asyncio.to_thread(preparing.wait, 5)
        spawning.cancel()
        await asyncio.sleep(0.05)
        go.set()
        with pytest.raises(asyncio.CancelledError):
            await spawning

    before, alive = open_fds(), children()
    try:
        run_on(loop, work())
    finally:
        go.set()
    assert children() <= alive
    assert open_fds() == before


def test_a_preparation_that_fails_raises_and_leaves_nothing(tmp_path: Path) -> None:
    def prepare() -> Launch:
        raise OSError("no room for the work dir")

    before, alive = open_fds(), children()
    with pytest.raises(OSError, match="no room"):
        run_on("asyncio", spawn_prepared(prepare, env={}, cwd=tmp_path))
    assert children() <= alive
    assert open_fds() == before


@pytest.mark.parametrize("loop", LOOPS)
def test_cancelled_again_while_waiting_for_the_preparation_it_still_waits_and_reaps(
    loop: str, tmp_path: Path
) -> None:
    # A start cancelled twice (a timeout, then a shutdown) must still wait for the worker
    # thread: the caller's clean-up (closing the sandbox's descriptors, removing its cgroup and
    # work dir, giving back its uid) would otherwise race a preparation still going on, the
    # pipe ends the thread is about to hand to the child would be closed (their numbers free
    # for another spawn's descriptors), and the child it then starts would be nobody's.
    go = threading.Event()
    preparing = threading.Event()
    prepared = threading.Event()

    def prepare() -> Launch:
        preparing.set()
        go.wait(10)
        prepared.set()
        return Launch(["/bin/sh", "-c", "sleep 30 & exec sleep 30"])

    async def work() -> bool:
        spawning = asyncio.ensure_future(spawn_prepared(prepare, env={}, cwd=tmp_path))
        await asyncio.to_thread(preparing.wait, 5)
        spawning.cancel()
        await asyncio.sleep(0.05)  # it now waits for the thread
        spawning.cancel()
        await asyncio.sleep(0.05)
        go.set()
        with pytest.raises(asyncio.CancelledError):
            await spawning
        return prepared.is_set()

    before, alive = open_fds(), children()
    try:
        waited = run_on(loop, work())
    finally:
        go.set()
    assert waited, "the cancelled start returned while its preparation went on"
    assert children() <= alive
    assert open_fds() == before


def test_a_loop_shutting_down_while_preparing_still_waits_for_the_thread(tmp_path: Path) -> None:
    # `asyncio.run` cancels every task left when its main returns (a server stopped hard): the
    # wait for the thread must not be such a task, or the caller's clean-up runs under a
    # preparation still going on, and the pipe ends the child is to get are closed first.
    preparing, go, prepared = threading.Event(), threading.Event(), threading.Event()
    seen_by_cleanup: list[bool] = []
    left: list[asyncio.Future[None]] = []

    def prepare() -> Launch:
        preparing.set()
        go.wait(10)
        prepared.set()
        return Launch(["/bin/sh", "-c", "sleep 30 & exec sleep 30"])

    async def launch() -> None:
        try:
            await spawn_prepared(prepare, env={}, cwd=tmp_path)
        finally:
            seen_by_cleanup.append(prepared.is_set())

    async def main() -> None:
        left.append(asyncio.ensure_future(launch()))
        await asyncio.to_thread(preparing.wait, 5)
        threading.Timer(0.2, go.set).start()
        # main returns with the launch still waiting: asyncio.run cancels it

    before, alive = open_fds(), children()
    try:
        asyncio.run(main())
    finally:
        go.set()
    assert seen_by_cleanup == [True], "the clean-up ran while the preparation went on"
    assert children() <= alive
    assert open_fds() == before
