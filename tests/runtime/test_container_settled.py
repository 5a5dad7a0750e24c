"""The docker runtime's launch steps (prepare, create, attach, start) run on a worker thread
that a cancellation, however often repeated, waits for: what the step made (a container, an
attach stream) is recorded before the launch's clean-up looks for it."""

from __future__ import annotations

import asyncio
import threading

from saassy.runtime.container import _settled


async def test_a_step_cancelled_twice_still_waits_for_its_thread() -> None:
    started, go_on, made = threading.Event(), threading.Event(), []

    def create() -> str:
        started.set()
        go_on.wait(5)
        made.append("container")
        return "container"

    step = asyncio.ensure_future(_settled(create))
    await asyncio.to_thread(started.wait, 5)
    for _ in range(2):  # the task's cancel, then the worker's shut-down
        step.cancel()
        await asyncio.sleep(0.05)
    assert not step.done()
    go_on.set()
    await asyncio.gather(step, return_exceptions=True)
    assert made == ["container"]
