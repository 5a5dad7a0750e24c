"""Blocking work on a worker thread that a cancellation cannot cut short."""

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
