"""A worker thread's work is finished before a cancellation goes on."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from saassy.kit.threads import to_thread_to_the_end


async def test_a_cancellation_waits_for_the_thread_then_goes_on() -> None:
    started, made = threading.Event(), []

    def make_files() -> str:
        started.set()
        time.sleep(0.2)
        made.append("work dir")
        return "done"

    work = asyncio.ensure_future(to_thread_to_the_end(make_files))
    await asyncio.to_thread(started.wait, 5)
    work.cancel()
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
