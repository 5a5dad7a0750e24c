"""Receivers that answer slowly, never, or with a bomb hold only their own deliveries: an
attempt has one deadline for all of it, another tenant's message goes while one hangs, and the
answer is read raw, never inflated."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import httpx

from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.webhooks.relay import DeliveryPolicy, deliver_pending_webhooks, run_webhook_relay
from saassy.webhooks.sending import new_client
from tests.conftest import SignUp
from tests.webhooks.receiver import Receiver, running
from tests.webhooks.support import ENDPOINTS, create_endpoint
from tests.webhooks.test_delivery import deliver_until, messages_of, run_task

GUARD_S = 20.0  # only so that a regression fails instead of hanging the suite


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def test_another_tenants_message_goes_while_one_tenants_endpoints_hang(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, engine: TaskEngine
) -> None:
    ada, bob = await signup(), await signup()
    released = threading.Event()
    # Two slots in all, one per organization: Ada's two hanging endpoints get one slot.
    policy = DeliveryPolicy(
        schedule=(timedelta(milliseconds=10),), concurrency=2, organization_concurrency=1
    )
    with (
        running(Receiver(hold=released)) as slow,
        running(Receiver()) as fast,
    ):
        await create_endpoint(client, ada, slow.url + "&n=1")
        await create_endpoint(client, ada, slow.url + "&n=2")
        await create_endpoint(client, bob, fast.url)
        relay = asyncio.create_task(
            run_webhook_relay(ctx.sessionmaker, ctx.settings, ctx.webhook_wakeup, policy=policy)
        )
        try:
            await run_task(ctx, engine, ada)
            await until(lambda: slow.received() == 1, "Ada's first message was not sent")

            # Ada's receiver hangs; Bob's task ends now and his message is delivered.
            await run_task(ctx, engine, bob)
            await until(lambda: len(fast.succeeded()) == 1, "Bob's message waited for Ada's")
            assert slow.received() == 1  # Ada's second endpoint waits for her slot
            assert not released.is_set()

            released.set()
            await until(lambda: len(slow.succeeded()) == 2, "Ada's messages were not sent")
        finally:
            released.set()
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay


async def test_a_receiver_trickling_its_answer_fails_the_attempt_at_the_deadline(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, engine: TaskEngine
) -> None:
    ada = await signup()
    stop = threading.Event()
    one_attempt = DeliveryPolicy(schedule=(), timeout_s=0.5)
    with running(Receiver(hold=stop, trickle=True)) as trickling:
        endpoint = await create_endpoint(client, ada, trickling.url)
        await run_task(ctx, engine, ada)
        try:
            async with new_client() as http:
                async with asyncio.timeout(GUARD_S):
                    await deliver_pending_webhooks(
                        ctx.sessionmaker, ctx.settings, http, one_attempt
                    )
            # The round is over while the receiver still sends a byte at a time.
            assert not stop.is_set()
        finally:
            stop.set()
    [message] = await messages_of(client, ada, endpoint["id"])
    assert (message["status"], message["last_error"]) == ("failed", "no answer within 0.5 s")


async def test_a_compressed_answer_is_neither_asked_for_nor_inflated(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, engine: TaskEngine
) -> None:
    ada = await signup()
    bomb = gzip.compress(b"A" * 20_000_000)  # 20 MB of "A" in about 20 kB
    answer = Receiver(status=200, body=bomb, headers={"content-encoding": "gzip"})
    with running(answer) as receiver:
        endpoint = await create_endpoint(client, ada, receiver.url)
        await run_task(ctx, engine, ada)
        await deliver_until(ctx, receiver.succeeded)
    [got] = receiver.requests
    assert got.headers["accept-encoding"] == "identity"
    [message] = await messages_of(client, ada, endpoint["id"])
    detail = await client.get(
        f"{ENDPOINTS}/{endpoint['id']}/messages/{message['id']}", headers=ada.headers
    )
    [attempt] = detail.json()["attempt_log"]
    assert attempt["succeeded"] is True
    assert attempt["response_body"] == "(gzip-encoded answer not shown)"


async def test_a_binary_answer_is_kept_short_and_storable(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, engine: TaskEngine
) -> None:
    ada = await signup()
    with running(Receiver(status=200, body=b"\x00\xff" * 100_000)) as receiver:
        endpoint = await create_endpoint(client, ada, receiver.url)
        await run_task(ctx, engine, ada)
        await deliver_until(ctx, receiver.succeeded)
    [message] = await messages_of(client, ada, endpoint["id"])
    assert message["status"] == "delivered"
    detail = await client.get(
        f"{ENDPOINTS}/{endpoint['id']}/messages/{message['id']}", headers=ada.headers
    )
    [attempt] = detail.json()["attempt_log"]
    assert len(attempt["response_body"]) == 1024
    assert "\x00" not in attempt["response_body"]
