"""A coroutine that runs in the background until stopped: one way to start and stop them all."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

CANCEL_AGAIN_S = 1.0


class BackgroundLoop:
    def __init__(self, run: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._run = run
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        """Started and not yet asked to stop."""
        return self._task is not None

    def start(self) -> None:
        """Start it unless it runs already."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Cancel it and wait until it has ended; safe to call when not running."""
        task, self._task = self._task, None
        if task is None:
            return
        # Some awaits swallow a cancellation that races their own completion (Python 3.11's
        # `asyncio.wait_for`, drivers' clean-ups); ask again rather than wait forever.
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=CANCEL_AGAIN_S)
        with contextlib.suppress(asyncio.CancelledError):
            task.result()
