"""A task's end reaches the organization's receivers: signed, retried, logged, refused where
the address is private, and an endpoint that keeps failing is disabled."""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from http.server import HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.events.bus import publish_status
from saassy.events.redis import RedisEventBus
from saassy.kit.time import utcnow
from saassy.models import OutboxEmail, TaskStatus, WebhookEndpoint, WebhookMessage
from saassy.runtime.fake import FakeRuntime, FakeScript
from saassy.webhooks.relay import DeliveryPolicy, deliver_pending_webhooks, webhook_relay_loop
from saassy.webhooks.sending import new_client
from tests.audit.support import entries
from tests.conftest import Account, SignUp
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import insert_tasks, wait_for_status
from tests.events.test_bus_selection import require_redis
from tests.services import REDIS_URL
from tests.webhooks.receiver import Receiver, VerificationFailed, running, verify
from tests.webhooks.support import ENDPOINTS, create_endpoint
from tests.webhooks.tls import localhost_tls

FAST = DeliveryPolicy(schedule=(timedelta(milliseconds=10),) * 7, jitter=0.0)


async def deliver_until(
    ctx: AppContext,
    done: Callable[[], Any],
    policy: DeliveryPolicy = FAST,
    settings: Settings | None = None,
    timeout_s: float = 10.0,
) -> None:
    """Run relay rounds until `done()` holds (what the relay loop does on its polls)."""
    deadline = time.monotonic() + timeout_s
    async with new_client() as client:
        while True:
            await deliver_pending_webhooks(
                ctx.sessionmaker, settings or ctx.settings, client, policy
            )
            if done():
                return
            if time.monotonic() > deadline:
                raise AssertionError("not delivered in time")
            await asyncio.sleep(0.02)


async def run_task(
    ctx: AppContext, engine: TaskEngine, account: Account, **options: Any
) -> uuid.UUID:
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, **options
    )
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id])
    return task_id


async def messages_of(
    client: httpx.AsyncClient, account: Account, endpoint_id: str
) -> list[dict[str, Any]]:
    response = await client.get(f"{ENDPOINTS}/{endpoint_id}/messages", headers=account.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_finished_task_is_delivered_signed_without_its_input(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    receiver: Receiver,
) -> None:
    ada = await signup()
    endpoint = await create_endpoint(client, ada, receiver.url)
    task_id = await run_task(ctx, engine, ada, input={"password": "hunter2"})

    await deliver_until(ctx, receiver.succeeded)
    [got] = receiver.requests
    event = verify(endpoint["secret"], got.headers, got.body)
    with pytest.raises(VerificationFailed):
        verify("whsec_" + "A" * 43 + "=", got.headers, got.body)
    assert event["type"] == "task.succeeded"
    data = event["data"]
    assert (data["id"], data["type"], data["status"]) == (str(task_id), "noop", "succeeded")
    assert data["started_at"]
    assert data["finished_at"]
    assert data["created_at"]
    assert event["timestamp"] == data["finished_at"]
    assert data["links"]["api"] == f"{ctx.settings.base_url}/api/v1/tasks/{task_id}"
    assert b"hunter2" not in got.body
    assert b"password" not in got.body
    assert got.headers["content-type"] == "application/json"

    [message] = await messages_of(client, ada, endpoint["id"])
    assert message["webhook_id"] == got.headers["webhook-id"]
    assert (message["status"], message["attempts"], message["event_type"]) == (
        "delivered",
        1,
        "task.succeeded",
    )


async def test_five_failures_then_success_deliver_once_with_six_attempts_logged(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    fake_runtime: FakeRuntime,
) -> None:
    ada = await signup()
    with running(Receiver(failures=5)) as receiver:
        endpoint = await create_endpoint(client, ada, receiver.url, event_types=["task.failed"])
        task_id = uuid.uuid4()
        fake_runtime.script(f"task-{task_id}-attempt-1", FakeScript(exit_code=3))
        await insert_tasks(
            ctx.sessionmaker, ctx.settings.catalog, ada.organization_id, task_ids=[task_id]
        )
        engine.notify_submitted()
        await wait_for_status(ctx.sessionmaker, [task_id])
        await deliver_until(ctx, receiver.succeeded)
        await deliver_until(ctx, lambda: True)  # a further round sends nothing more

    assert [r.answered for r in receiver.requests] == [500] * 5 + [204]
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for request in receiver.requests:  # every attempt is signed, with its own timestamp
        assert verify(endpoint["secret"], request.headers, request.body)["type"] == "task.failed"
    [message] = await messages_of(client, ada, endpoint["id"])
    detail = await client.get(
        f"{ENDPOINTS}/{endpoint['id']}/messages/{message['id']}", headers=ada.headers
    )
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert (body["status"], body["attempts"]) == ("delivered", 6)
    log = body["attempt_log"]
    assert [a["number"] for a in log] == [1, 2, 3, 4, 5, 6]
    assert [a["status_code"] for a in log] == [500] * 5 + [204]
    assert [a["succeeded"] for a in log] == [False] * 5 + [True]
    assert log[0]["response_body"] == "not today"
    assert log[0]["error"] == "HTTP 500"
    assert all(a["duration_ms"] >= 0 for a in log)
    assert body["event"]["data"]["id"] == str(task_id)


async def test_during_a_rotation_both_secrets_sign(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    receiver: Receiver,
) -> None:
    ada = await signup()
    endpoint = await create_endpoint(client, ada, receiver.url)
    rotated = await client.post(f"{ENDPOINTS}/{endpoint['id']}/rotate-secret", headers=ada.headers)
    new_secret = rotated.json()["secret"]
    await run_task(ctx, engine, ada)
    await deliver_until(ctx, receiver.succeeded)

    [got] = receiver.requests
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    verify(new_secret, got.headers, got.body)
    verify(endpoint["secret"], got.headers, got.body)

    # Once the overlap is over, only the new secret signs.
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(WebhookEndpoint).values(previous_secret_expires_at=utcnow()))
    await run_task(ctx, engine, ada)
    await deliver_until(ctx, lambda: len(receiver.succeeded()) == 2)
    later = receiver.requests[-1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    verify(new_secret, later.headers, later.body)
    with pytest.raises(VerificationFailed):
        verify(endpoint["secret"], later.headers, later.body)


async def test_a_name_resolving_to_loopback_is_refused_unless_allowed(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ctx.settings, "webhooks_allow_private", False)
    ada = await signup()
    # A name is accepted when saved: what it resolves to is checked at every delivery.
    endpoint = await create_endpoint(client, ada, f"http://localhost:{receiver.port}/hook")
    await run_task(ctx, engine, ada)
    one_attempt = DeliveryPolicy(schedule=(), jitter=0.0)
    await deliver_until(ctx, lambda: True, policy=one_attempt)

    assert receiver.requests == []
    [message] = await messages_of(client, ada, endpoint["id"])
    assert message["status"] == "failed"
    # What the tenant sees is generic: the address a name resolves to on the platform's
    # network is the operator's to know (the server log has it).
    assert message["last_error"] == (
        "refused: the host resolves to a private, loopback or otherwise non-public address"
    )
    detail = await client.get(
        f"{ENDPOINTS}/{endpoint['id']}/messages/{message['id']}", headers=ada.headers
    )
    assert "127.0.0.1" not in detail.text

    # The operator allows private addresses; a redelivery then arrives, with the same id.
    monkeypatch.setattr(ctx.settings, "webhooks_allow_private", True)
    path = f"{ENDPOINTS}/{endpoint['id']}/messages/{message['id']}/redeliver"
    again = await client.post(path, headers=ada.headers)
    assert again.status_code == 202, again.text
    assert again.json()["status"] == "pending"
    await deliver_until(ctx, receiver.succeeded)
    [got] = receiver.requests
    assert got.headers["webhook-id"] == message["webhook_id"]
    verify(endpoint["secret"], got.headers, got.body)
    [message] = await messages_of(client, ada, endpoint["id"])
    assert (message["status"], message["attempts"]) == ("delivered", 2)


async def test_a_name_that_does_not_resolve_says_so_without_the_resolvers_words(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, engine: TaskEngine
) -> None:
    ada = await signup()
    endpoint = await create_endpoint(client, ada, "https://hooks.saassy-test.invalid/hook")
    await run_task(ctx, engine, ada)
    await deliver_until(ctx, lambda: True, policy=DeliveryPolicy(schedule=(), jitter=0.0))
    [message] = await messages_of(client, ada, endpoint["id"])
    assert (message["status"], message["last_error"]) == (
        "failed",
        "refused: could not resolve the host",
    )


async def test_canceling_a_queued_task_sends_task_canceled_to_subscribed_endpoints(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, receiver: Receiver
) -> None:
    ada = await signup()
    everything = await create_endpoint(client, ada, receiver.url)
    await create_endpoint(client, ada, receiver.url + "&only=ok", event_types=["task.succeeded"])
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, ada.organization_id, run_after_offset_s=3600
    )
    canceled = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=ada.headers)
    assert canceled.status_code in (200, 202), canceled.text
    assert ctx.webhook_wakeup.is_set()  # the commit woke the relay

    await deliver_until(ctx, receiver.succeeded)
    await deliver_until(ctx, lambda: True)
    [got] = receiver.requests
    event = verify(everything["secret"], got.headers, got.body)
    assert (event["type"], event["data"]["status"]) == ("task.canceled", "canceled")
    assert event["data"]["error_code"] is not None


async def test_an_endpoint_failing_for_days_is_disabled_and_its_owners_told(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
) -> None:
    ada = await signup()
    two_attempts = DeliveryPolicy(schedule=(timedelta(milliseconds=10),), jitter=0.0)
    with running(Receiver(status=503)) as receiver:
        endpoint = await create_endpoint(client, ada, receiver.url)
        await run_task(ctx, engine, ada)
        await deliver_until(ctx, lambda: len(receiver.requests) == 2, policy=two_attempts)
        await deliver_until(ctx, lambda: True, policy=two_attempts)
        # Failed for good, but the endpoint has failed for minutes only: still enabled.
        path = f"{ENDPOINTS}/{endpoint['id']}"
        assert (await client.get(path, headers=ada.headers)).json()["enabled"] is True

        async with ctx.sessionmaker() as session, session.begin():
            await session.execute(
                update(WebhookEndpoint).values(failing_since=utcnow() - timedelta(days=6))
            )
        await run_task(ctx, engine, ada)
        await deliver_until(ctx, lambda: len(receiver.requests) == 4, policy=two_attempts)
        await deliver_until(ctx, lambda: True, policy=two_attempts)

    shown = (await client.get(path, headers=ada.headers)).json()
    assert shown["enabled"] is False
    assert shown["disabled_reason"] == "every delivery failed for 5 days"
    [entry] = await entries(ctx, "webhook_endpoint.disabled")
    assert entry.actor_user_id is None
    assert str(entry.target_id) == endpoint["id"]
    async with ctx.sessionmaker() as session:
        mail = (
            await session.scalars(
                select(OutboxEmail).where(OutboxEmail.subject == "A webhook endpoint was disabled")
            )
        ).all()
    assert [m.to_address for m in mail] == [ada.email]

    # A disabled endpoint is owed nothing new; enabling it again is a member's choice.
    await run_task(ctx, engine, ada)
    async with ctx.sessionmaker() as session:
        count = await session.scalar(select(func.count()).select_from(WebhookMessage))
    assert count == 2
    enabled = await client.patch(path, json={"enabled": True}, headers=ada.headers)
    assert enabled.json()["enabled"] is True
    assert enabled.json()["disabled_reason"] is None


async def test_two_relays_deliver_each_message_once(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, receiver: Receiver
) -> None:
    ada = await signup()
    await create_endpoint(client, ada, receiver.url)
    task_ids = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, ada.organization_id, 6, run_after_offset_s=3600
    )
    for task_id in task_ids:
        response = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=ada.headers)
        assert response.status_code in (200, 202), response.text

    async with new_client() as one, new_client() as two:
        await asyncio.gather(
            deliver_pending_webhooks(ctx.sessionmaker, ctx.settings, one, FAST),
            deliver_pending_webhooks(ctx.sessionmaker, ctx.settings, two, FAST),
        )
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    assert len(ids) == 6
    assert len(set(ids)) == 6


DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


async def test_the_documented_receiver_verifies_a_real_delivery(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    receiver: Receiver,
) -> None:
    verifier, _ = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    namespace: dict[str, Any] = {}
    exec(compile(verifier, str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
    ada = await signup()
    endpoint = await create_endpoint(client, ada, receiver.url)
    task_id = await run_task(ctx, engine, ada)
    await deliver_until(ctx, receiver.succeeded)

    [got] = receiver.requests
    event = namespace["verify_webhook"](endpoint["secret"], got.headers, got.body)
    assert event["data"]["id"] == str(task_id)
    tampered = got.body.replace(b"succeeded", b"failed")
    with pytest.raises(namespace["InvalidWebhook"]):
        namespace["verify_webhook"](endpoint["secret"], got.headers, tampered)


async def test_the_documented_receiver_program_accepts_a_real_delivery_and_refuses_a_forged_one(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier, program = re.findall(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    namespace: dict[str, Any] = {"__name__": "receiver"}  # not __main__: we serve it ourselves
    exec(compile(verifier + program, str(DOCS), "exec"), namespace)  # noqa: S102 - our own docs
    server = HTTPServer(("127.0.0.1", 0), namespace["Receiver"])
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    try:
        ada = await signup()
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        endpoint = await create_endpoint(client, ada, url)
        monkeypatch.setenv("SECRET", endpoint["secret"])
        await run_task(ctx, engine, ada)
        await deliver_until(ctx, lambda: True)
        [message] = await messages_of(client, ada, endpoint["id"])
        assert message["status"] == "delivered"
        forged = await asyncio.to_thread(
            httpx.post,
            url,
            content=b"{}",
            headers={
                "webhook-id": "msg_x",
                "webhook-timestamp": str(int(time.time())),
                "webhook-signature": "v1,Zm9yZ2Vk",
            },
        )
        assert forged.status_code == 400
    finally:
        server.shutdown()
        server.server_close()


async def test_the_relay_loop_delivers_as_soon_as_a_task_ends(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    receiver: Receiver,
) -> None:
    ada = await signup()
    await create_endpoint(client, ada, receiver.url)
    # The loop as `saassy dev` runs it, woken by the engine's commit that queued the message:
    # a poll alone would take `POLL_INTERVAL_S` (5 s).
    loop = webhook_relay_loop(
        ctx.sessionmaker, ctx.settings, ctx.webhook_wakeup, engine.events, every_task_end=False
    )
    loop.start()
    try:
        await asyncio.sleep(0.2)  # its first round found nothing; it waits now
        started = time.monotonic()
        await run_task(ctx, engine, ada)
        while not receiver.succeeded():
            assert time.monotonic() - started < 3.0, "the relay was not woken"
            await asyncio.sleep(0.02)
    finally:
        await loop.stop()


async def test_only_an_outcome_that_queued_messages_wakes_the_relay(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    receiver: Receiver,
) -> None:
    """In one process the relay is woken by the commits that queued messages, not by every
    task's end: a customer without endpoints costs it no round."""
    ada = await signup()
    # As `saassy dev` builds it (not started: the wake-up is what is watched).
    webhook_relay_loop(
        ctx.sessionmaker, ctx.settings, ctx.webhook_wakeup, engine.events, every_task_end=False
    )
    ctx.webhook_wakeup.clear()
    await run_task(ctx, engine, ada)
    await asyncio.sleep(0.05)  # what follows the outcome's commit has run
    assert not ctx.webhook_wakeup.is_set()

    await create_endpoint(client, ada, receiver.url)
    ctx.webhook_wakeup.clear()
    await run_task(ctx, engine, ada)
    deadline = time.monotonic() + 3.0
    while not ctx.webhook_wakeup.is_set():
        assert time.monotonic() < deadline, "the commit that queued a message did not wake it"
        await asyncio.sleep(0.01)


async def test_a_task_adoption_ends_wakes_the_relay_too(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine_factory: EngineFactory,
    receiver: Receiver,
) -> None:
    """A task ended by adoption (its executor died, no platform-loss retry left) hands over
    what its commit queued as an outcome does."""
    ada = await signup()
    await create_endpoint(client, ada, receiver.url)
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, ada.organization_id)
    crashed = engine_factory(FakeRuntime(FakeScript(hang=True)), platform_loss_retries=0)
    assert len(await crashed.dispatcher.dispatch_once()) == 1
    await wait_for_status(ctx.sessionmaker, [task_id], [TaskStatus.running])
    await crashed.executor.stop(grace_s=0)  # kills and releases the lease, as a SIGTERM would

    ctx.webhook_wakeup.clear()
    restarted = engine_factory(FakeRuntime(), platform_loss_retries=0)
    assert await restarted.executor.adopt() == 1
    assert (await wait_for_status(ctx.sessionmaker, [task_id])) == {task_id: TaskStatus.failed}
    assert ctx.webhook_wakeup.is_set()
    async with ctx.sessionmaker() as session:
        queued = await session.scalar(
            select(func.count())
            .select_from(WebhookMessage)
            .where(WebhookMessage.event_type == "task.failed")
        )
    assert queued == 1


@pytest.mark.redis
async def test_a_bus_across_processes_still_wakes_the_relay_on_every_ended_task(
    ctx: AppContext,
) -> None:
    """A `saassy worker` elsewhere writes outcomes this process never commits: there, an
    ended task's status event, heard over Redis, is what wakes the relay."""
    require_redis()
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    here = RedisEventBus(REDIS_URL, prefix=prefix)
    elsewhere = RedisEventBus(REDIS_URL, prefix=prefix)  # another process's
    wakeup = asyncio.Event()
    try:
        await here.start()
        await elsewhere.start()
        # As `saassy scheduler` builds it (not started).
        webhook_relay_loop(ctx.sessionmaker, ctx.settings, wakeup, here, every_task_end=True)
        task_id, organization_id = uuid.uuid4(), uuid.uuid4()
        await publish_status(elsewhere, organization_id, task_id, TaskStatus.running, 1)
        await asyncio.sleep(0.2)
        assert not wakeup.is_set()  # a task that has not ended queued nothing
        await publish_status(elsewhere, organization_id, task_id, TaskStatus.succeeded, 1)
        async with asyncio.timeout(3.0):
            await wakeup.wait()
    finally:
        await here.close()
        await elsewhere.close()


def test_the_default_schedule_spans_about_a_day_with_jitter() -> None:
    policy = DeliveryPolicy()
    assert policy.max_attempts == 8
    total = sum(policy.schedule, timedelta())
    assert timedelta(hours=27) < total < timedelta(hours=28)
    for attempt, base in enumerate(policy.schedule, start=1):
        delays = {policy.retry_delay(attempt) for _ in range(20)}
        assert all(d is not None and base * 0.8 <= d <= base * 1.2 for d in delays)
        assert len(delays) > 1  # spread, not one fixed instant
    assert policy.retry_delay(8) is None


async def test_https_goes_to_the_checked_address_with_the_names_certificate(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    tmp_path: Path,
) -> None:
    """The connection is made to the address that was checked, yet TLS still names the host
    (SNI) and verifies its certificate against it, and the Host header is the URL's."""
    server_tls, client_tls = localhost_tls(tmp_path)
    ada = await signup()
    with running(Receiver(), tls=server_tls) as receiver:
        endpoint = await create_endpoint(client, ada, f"https://localhost:{receiver.port}/hook")
        await run_task(ctx, engine, ada)
        async with httpx.AsyncClient(verify=client_tls, trust_env=False) as trusting:
            await deliver_pending_webhooks(ctx.sessionmaker, ctx.settings, trusting, FAST)
        [got] = receiver.requests
        assert got.headers["host"] == f"localhost:{receiver.port}"
        verify(endpoint["secret"], got.headers, got.body)

        # A client that does not trust the certificate fails the attempt: it is checked.
        await run_task(ctx, engine, ada)
        async with new_client() as default:
            await deliver_pending_webhooks(ctx.sessionmaker, ctx.settings, default, FAST)
        assert len(receiver.requests) == 1
    messages = await messages_of(client, ada, endpoint["id"])
    assert [m["status"] for m in messages] == ["pending", "delivered"]
    assert "CERTIFICATE_VERIFY_FAILED" in messages[0]["last_error"]
