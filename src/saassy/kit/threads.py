"""Blocking work on a worker thread that a cancellation cannot cut short, or on the loop itself
when it is small.

A hop to a worker thread is not free on a busy server: every system call the thread makes
releases the GIL, the busy loop takes it, and the thread waits to get it back (futex wake-ups
and context switches each time). For a few system calls on little data (a task's small output
copied out, a cgroup's files read) the hop costs more than the work: measured on a 2-core VM
draining echo tasks, keeping a task's end-of-run steps on the loop saved ~2.8 ms of the server's
CPU per task (bench results in docs/benchmarks.md). Work that can grow with what a tenant wrote
still goes to a thread, so the loop is never held for long.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def in_thread(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> asyncio.Future[T]:
    """`func` on the loop's default executor, in a copy of this context (as `asyncio.to_thread`).
    The executor's own future, not a task around it: a loop shutting down (`asyncio.run`)
    cancels every task it has, and a wrapper cancelled so is done while its thread runs on."""
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return asyncio.get_running_loop().run_in_executor(None, call)


async def until_done(future: asyncio.Future[Any]) -> None:
    """Until `future` is done, however often the caller is cancelled meanwhile; neither cancels
    it nor raises what it raised. For a thread's future: its work must be bounded."""
    while not future.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({future})


# Little data for a copy or a removal on the loop: well under a millisecond. (Parsing
# untrusted JSON is far slower per byte: see dispatch/worker_output.py's LITTLE_BYTES.)
SMALL_BYTES = 256 * 1024


async def on_loop_if(small: bool, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`func` right here on the loop when `small` (bounded work on little data), else on a
    worker thread (`asyncio.to_thread`)."""
    if small:
        return func(*args, **kwargs)
    return await asyncio.to_thread(func, *args, **kwargs)


async def to_thread_to_the_end(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`asyncio.to_thread`, but when cancelled (once or more) it lets the thread finish before
    raising: the clean-up that follows a cancellation must not race files the thread is still
    making. The thread's work must be bounded."""
    future = in_thread(func, *args, **kwargs)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await until_done(future)
        raise
