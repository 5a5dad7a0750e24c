"""Background loops stop when asked, even when an await swallows the first cancellation."""

from __future__ import annotations

import asyncio

import pytest

from saassy.kit.background import BackgroundLoop


async def test_stop_ends_a_loop_that_swallowed_the_first_cancellation() -> None:
    rounds = 0

    async def stubborn() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if rounds > 1:
                    raise
                # What Python 3.11's wait_for does when its inner await finished at the same time.

    loop = BackgroundLoop(stubborn, "stubborn")
    loop.start()
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await loop.stop()
    assert rounds == 2


async def test_stop_is_safe_when_not_running_and_re_raises_a_crash() -> None:
    await BackgroundLoop(asyncio.sleep, "never started").stop()

    async def crash() -> None:
        raise RuntimeError("boom")

    loop = BackgroundLoop(crash, "crash")
    loop.start()
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="boom"):
        await loop.stop()
