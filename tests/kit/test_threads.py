"""A worker thread's work is finished before a cancellation goes on."""

from __future__ import annotations

import asyncio
import threading

import pytest

from saassy.kit.threads import to_thread_to_the_end


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
