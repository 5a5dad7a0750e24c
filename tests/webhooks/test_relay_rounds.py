"""The relay's rounds: a burst of task ends is read in one round, and none is left behind."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import httpx
import pytest

from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.webhooks.relay import Deliveries, DeliveryPolicy, run_webhook_relay
from tests.conftest import SignUp
from tests.webhooks.receiver import Receiver, running
from tests.webhooks.support import create_endpoint
from tests.webhooks.test_delivery import run_task
from tests.webhooks.test_slow_receivers import until

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


async def test_an_attempt_that_ends_starts_the_next_due_message_without_waiting_for_the_gap(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, engine: TaskEngine
) -> None:
    # The gap gathers a burst of task ends into one round; a freed slot is no burst: with one
    # slot, a gap after each attempt would cap a relay at one message a gap (at 100 ms and 16
    # slots, 160 a second, 20 a second to one endpoint), whatever the receivers' speed.
    ada = await signup()
    long_gap_s = 5.0
    with running(Receiver()) as receiver:
        await create_endpoint(client, ada, receiver.url + "&n=1")
        await create_endpoint(client, ada, receiver.url + "&n=2")
        await run_task(ctx, engine, ada)  # a message to each endpoint, one slot for both
        relay = asyncio.create_task(
            run_webhook_relay(
                ctx.sessionmaker,
                ctx.settings,
                ctx.webhook_wakeup,
                round_gap_s=long_gap_s,
                policy=DeliveryPolicy(concurrency=1),
            )
        )
        try:
            async with asyncio.timeout(long_gap_s / 2):
                await until(lambda: len(receiver.succeeded()) == 2, "the second waited")
        finally:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
