"""Blocking work on a worker thread that a cancellation cannot cut short."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def to_thread_to_the_end(func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`asyncio.to_thread`, but when cancelled (once or more) it lets the thread finish before
    raising: the clean-up that follows a cancellation must not race files the thread is still
    making. The thread's work must be bounded."""
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    # The executor's own future, not a task around it: a loop shutting down (`asyncio.run`)
    # cancels every task it has, and a wrapper cancelled so is done while its thread runs on.
    future = asyncio.get_running_loop().run_in_executor(None, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        while not future.done():  # cancelled again meanwhile: still until the thread is done
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({future})  # neither cancels it nor raises what it raised
        raise
