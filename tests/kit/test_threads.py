"""A worker thread's work is finished before a cancellation goes on."""

from __future__ import annotations

import asyncio
import threading

import pytest

from saassy.kit.threads import on_loop_if, to_thread_to_the_end


@pytest.mark.parametrize("cancels", [1, 2])
async def test_a_cancellation_waits_for_the_thread_then_goes_on(cancels: int) -> None:
    started, go_on, made = threading.Event(), threading.Event(), []

    def make_files() -> str:
        started.set()
        go_on.wait(5)
        made.append("work dir")
        return "done"

    work = asyncio.ensure_future(to_thread_to_the_end(make_files))
    await asyncio.to_thread(started.wait, 5)
    for _ in range(cancels):  # a timeout, then a shutdown
        work.cancel()
        await asyncio.sleep(0.05)
    assert not work.done()
    go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await work
    # The clean-up after the cancellation sees everything the thread made.
    assert made == ["work dir"]


async def test_the_result_and_the_error_come_back() -> None:
    assert await to_thread_to_the_end(lambda a, b: a + b, 2, b=3) == 5

    def fails() -> None:
        raise OSError("no space left")

    with pytest.raises(OSError, match="no space left"):
        await to_thread_to_the_end(fails)


def test_a_loop_shutting_down_still_waits_for_the_thread() -> None:
    """`asyncio.run` cancels every task left when its main returns (a second Ctrl-C skips the
    server's lifespan shut-down): the wrapper around the thread must not be one of them, or the
    caller's clean-up goes on while the thread still makes files."""
    started, go_on, made = threading.Event(), threading.Event(), []
    seen_by_cleanup: list[list[str]] = []
    left: list[asyncio.Task[None]] = []

    def make_files() -> None:
        started.set()
        go_on.wait(5)
        made.append("work dir")

    async def supervise() -> None:
        try:
            await to_thread_to_the_end(make_files)
        finally:
            seen_by_cleanup.append(list(made))

    async def main() -> None:
        left.append(asyncio.create_task(supervise()))
        await asyncio.to_thread(started.wait, 5)
        threading.Timer(0.2, go_on.set).start()
        # main returns with the supervisor still waiting: asyncio.run cancels every task

    asyncio.run(main())
    assert seen_by_cleanup == [["work dir"]]


@pytest.mark.parametrize("small", [True, False])
async def test_small_work_runs_on_the_loop_and_the_rest_on_a_worker_thread(small: bool) -> None:
    loop_thread = threading.current_thread()
    ran_on = await on_loop_if(small, lambda: threading.current_thread())
    assert (ran_on is loop_thread) is small

    def fails() -> None:
        raise OSError("no space left")

    with pytest.raises(OSError, match="no space left"):
        await on_loop_if(small, fails)
