"""The relay's rounds: a burst of task ends is read in one round, and none is left behind."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import pytest

from saassy.context import AppContext
from saassy.webhooks.relay import Deliveries, run_webhook_relay

GAP_S = 1.0  # long beside the burst, so a slow machine still fits it in one gap
BURST = 50


async def test_a_burst_of_wake_ups_costs_one_round_and_the_last_is_not_left_behind(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    rounds: list[float] = []
    a_round = asyncio.Event()
    start_due = Deliveries.start_due

    async def counted(self: Deliveries, due_by: datetime) -> int:
        rounds.append(loop.time())
        a_round.set()
        return await start_due(self, due_by)

    monkeypatch.setattr(Deliveries, "start_due", counted)
    wakeup = ctx.webhook_wakeup
    relay = asyncio.create_task(
        run_webhook_relay(ctx.sessionmaker, ctx.settings, wakeup, round_gap_s=GAP_S)
    )
    try:
        async with asyncio.timeout(10):
            await a_round.wait()  # the first, at start
            for _ in range(BURST):  # one task end after another, as a drain has them
                wakeup.set()
                await asyncio.sleep(0.004)
            last_wake = loop.time()
            a_round.clear()
            await a_round.wait()
        await asyncio.sleep(0.2)
    finally:
        relay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay

    # The start's round, then one (two on a machine slow enough to stretch the burst past
    # a gap) for the 50 wake-ups, the last of them read after the last wake-up.
    assert 2 <= len(rounds) <= 3, rounds
    assert rounds[-1] >= last_wake
