"""Outages of the services Saassy depends on, for real: each test starts its own PostgreSQL or
Redis on a free port and stops or restarts it mid-run. Clients see 503 while the database is
away; the scheduler and the workers wait and carry on; no accepted task is lost or run twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from kombu import Connection  # type: ignore[import-untyped]
from sqlalchemy import func, select

from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch.logs import LogSink
from saassy.events.memory import MemoryEventBus
from saassy.kit.migrate import upgrade_database
from saassy.models import QuotaCounter, Task, TaskAttempt, TaskLogChunk, TaskStatus, UsageRecord
from saassy.runtime.base import OutputChunk
from tests.conftest import Account, SignUp
from tests.dispatch.celery_cluster import (
    CELERY_CATALOG,
    Cluster,
    cluster_env,
    require_broker,
)
from tests.dispatch.support import insert_tasks
from tests.dispatch.test_celery_executor import submit, until_terminal
from tests.own_services import OwnPostgreSQL, OwnRedis, start_redis
from tests.processes import StartServer
from tests.runtime.conftest import require_sandbox
from tests.web.support import browser_for, sign_up


@pytest.fixture
def database_url(own_postgresql: OwnPostgreSQL) -> str:
    """This module's tests run on their own PostgreSQL, whatever the run's test database."""
    url = own_postgresql.create_database("saassy")
    upgrade_database(url)
    return url


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(config=CELERY_CATALOG)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


def assert_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0


async def test_the_api_and_the_dashboard_answer_503_while_the_database_is_away(
    app: FastAPI,
    client: httpx.AsyncClient,
    signup: SignUp,
    own_postgresql: OwnPostgreSQL,
    ctx: AppContext,
) -> None:
    account = await signup()
    browser = browser_for(app)
    await sign_up(browser)
    assert (await browser.get("/app")).status_code == 200
    before = await client.get("/api/v1/tasks", headers=account.headers)
    assert before.status_code == 200, before.text

    own_postgresql.stop()  # every pooled connection dies with the server
    assert_database_unavailable(
        await client.post("/api/v1/tasks", json={"type": "noop"}, headers=account.headers)
    )
    assert_database_unavailable(await client.get("/api/v1/tasks", headers=account.headers))
    page = await browser.get("/app")
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "We will be right back" in page.text
    assert "Retry-After" in page.headers
    ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"

    own_postgresql.start()
    submitted = await client.post("/api/v1/tasks", json={"type": "noop"}, headers=account.headers)
    assert submitted.status_code == 202, submitted.text
    assert (await client.get("/ready")).status_code == 200
    async with ctx.sessionmaker() as session:  # the refused submission wrote nothing
        count = await session.scalar(select(func.count()).select_from(Task))
    assert count == 1


async def test_log_lines_printed_while_the_database_is_away_are_written_when_it_returns(
    ctx: AppContext, signup: SignUp, own_postgresql: OwnPostgreSQL
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    sink = LogSink(
        ctx.sessionmaker,
        MemoryEventBus(),
        organization_id=uuid.UUID(account.organization_id),
        task_id=task_id,
        attempt_number=1,
    )
    await sink.add(OutputChunk("stdout", b"before\n"))
    await sink.flush()
    own_postgresql.stop()
    await sink.add(OutputChunk("stdout", b"during\n"))
    await sink.flush()  # kept, not lost
    own_postgresql.start()
    await sink.add(OutputChunk("stdout", b"after\n"))
    await sink.close()

    async with ctx.sessionmaker() as session:
        rows = (
            await session.execute(
                select(TaskLogChunk.seq, TaskLogChunk.data)
                .where(TaskLogChunk.task_id == task_id)
                .order_by(TaskLogChunk.seq)
            )
        ).all()
    assert [tuple(row) for row in rows] == [(1, "before\n"), (2, "during\n"), (3, "after\n")]


def start_cluster(tmp_path: Path, database_url: str, broker_url: str, **extra: str) -> Cluster:
    queue = f"saassy-test-{uuid.uuid4().hex[:10]}"
    logs = tmp_path / "logs"
    logs.mkdir()
    env = cluster_env(database_url, broker_url, queue, tmp_path / "host")
    return Cluster({**env, **extra}, logs)


async def tasks_of(ctx: AppContext, account: Account) -> list[uuid.UUID]:
    async with ctx.sessionmaker() as session:
        found = await session.scalars(
            select(Task.id).where(Task.organization_id == uuid.UUID(account.organization_id))
        )
        return list(found)


async def count_succeeded(ctx: AppContext, ids: list[uuid.UUID]) -> int:
    async with ctx.sessionmaker() as session:
        done = await session.scalar(
            select(func.count()).where(Task.id.in_(ids), Task.status == TaskStatus.succeeded)
        )
    return done or 0


async def assert_each_ran_once_and_was_counted_once(
    ctx: AppContext, account: Account, ids: list[uuid.UUID], cluster: Cluster
) -> None:
    async with ctx.sessionmaker() as session:
        attempts = (
            await session.execute(
                select(TaskAttempt.task_id, func.count())
                .where(TaskAttempt.task_id.in_(ids))
                .group_by(TaskAttempt.task_id)
            )
        ).all()
        usage = (
            await session.execute(
                select(UsageRecord.attempt_number, func.count(func.distinct(UsageRecord.task_id)))
                .where(UsageRecord.task_id.in_(ids))
                .group_by(UsageRecord.attempt_number)
            )
        ).all()
        counted = await session.scalar(
            select(func.sum(QuotaCounter.used)).where(
                QuotaCounter.organization_id == uuid.UUID(account.organization_id),
                QuotaCounter.metric == "tasks",
            )
        )
    twice = [task_id for task_id, count in attempts if count != 1]
    assert twice == [], cluster.all_logs()  # no attempt was lost, so none ran again
    assert len(attempts) == len(ids)
    assert dict(usage) == {1: len(ids)}  # the usage of each attempt, once
    assert counted == len(ids)


async def test_a_redis_restart_loses_no_task_and_runs_none_twice(
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    database_url: str,
    own_redis: OwnRedis,
    tmp_path: Path,
) -> None:
    """Redis is the broker and the event bus; it keeps nothing across the restart, so every
    message it held is lost with it: the scheduler sends those again."""
    require_sandbox()
    cluster = start_cluster(tmp_path, database_url, own_redis.url, SAASSY_REDIS_URL=own_redis.url)
    try:
        cluster.scheduler()
        cluster.worker(concurrency=4)
        cluster.worker(concurrency=4)
        account = await signup()
        ids = await submit(client, account, "noop", 100)
        deadline = time.monotonic() + 60
        while await count_succeeded(ctx, ids) < 20:
            cluster.check_alive()
            assert time.monotonic() < deadline, cluster.all_logs()
            await asyncio.sleep(0.05)
        done_before = await count_succeeded(ctx, ids)
        own_redis.stop()
        stopped_at = time.monotonic()
        await asyncio.sleep(2)
        own_redis.start()
        back_at = time.monotonic()
        final = await until_terminal(ctx, cluster, ids, timeout_s=90)
        all_done_at = time.monotonic()
        cluster.check_alive()
    finally:
        cluster.stop()

    assert set(final.values()) == {TaskStatus.succeeded}, cluster.all_logs()
    await assert_each_ran_once_and_was_counted_once(ctx, account, ids, cluster)
    scheduler_log = (tmp_path / "logs" / "scheduler-0.log").read_text()
    assert "broker.messages_sent_again" in scheduler_log
    assert "Traceback" not in scheduler_log
    print(  # the measured gap, for the record (pytest -s)
        f"\nredis restart: {done_before}/100 done before, away {back_at - stopped_at:.1f} s, "
        f"all done {all_done_at - back_at:.1f} s after it returned"
    )


@dataclass
class Submissions:
    """What a client saw, request by request, while submitting through an outage."""

    accepted: list[uuid.UUID] = field(default_factory=list)
    # (seconds since the test began, method, status, error code)
    answers: list[tuple[float, str, int, str | None]] = field(default_factory=list)

    def refused(self, method: str) -> list[float]:
        return [at for at, m, status, _ in self.answers if m == method and status == 503]


async def keep_submitting(
    api: httpx.AsyncClient, account: Account, seen: Submissions, began: float, stop: asyncio.Event
) -> None:
    """Submit a task and list tasks, every 50 ms, until `stop` (never in mid-request: a task
    the server stored must not go unseen)."""
    while not stop.is_set():
        for method in ("POST", "GET"):
            if method == "POST":
                response = await api.post(
                    "/api/v1/tasks", json={"type": "nap"}, headers=account.headers
                )
            else:
                response = await api.get("/api/v1/tasks", headers=account.headers)
            code = None
            if response.status_code >= 400:
                code = response.json()["error"]["code"]
                assert response.status_code == 503, response.text  # never a 500
                assert code == "database_unavailable"
                assert int(response.headers["Retry-After"]) > 0
            elif method == "POST":
                assert response.status_code == 202, response.text
                seen.accepted.append(uuid.UUID(response.json()["id"]))
            seen.answers.append((time.monotonic() - began, method, response.status_code, code))
        await asyncio.sleep(0.05)


async def test_a_postgresql_restart_answers_503_meanwhile_and_every_accepted_task_runs_once(
    ctx: AppContext,
    signup: SignUp,
    database_url: str,
    own_postgresql: OwnPostgreSQL,
    run_server: StartServer,
    tmp_path: Path,
) -> None:
    """A real `saassy api`, scheduler and worker on RabbitMQ; the database restarts while
    tasks are submitted and running. The outage is shorter than the lease, so no attempt is
    lost: each waits for the database and ends as it ran."""
    require_sandbox()
    broker_url = require_broker("rabbitmq")
    # A lease longer than the outage: the attempts running through it are not lost.
    cluster = start_cluster(tmp_path, database_url, broker_url, SAASSY_TASK_LEASE_S="10")
    account = await signup()
    try:
        cluster.scheduler()
        cluster.worker(concurrency=4)
        served = run_server(["api"], cluster.env, "/health")
        seen = Submissions()
        async with httpx.AsyncClient(base_url=served.url, timeout=30) as api:
            began = time.monotonic()
            stop = asyncio.Event()
            submitting = asyncio.create_task(keep_submitting(api, account, seen, began, stop))
            while len(seen.accepted) < 20:
                assert not submitting.done(), submitting.result()
                await asyncio.sleep(0.05)
            own_postgresql.stop()  # every connection of every process ends
            stopped_at = time.monotonic() - began
            await asyncio.sleep(3)
            own_postgresql.start()
            back_at = time.monotonic() - began
            await asyncio.sleep(3)
            stop.set()
            await submitting
        # A submission whose connection broke at its very commit may be stored though it was
        # answered 503: such a task must run once too.
        stored = await tasks_of(ctx, account)
        assert set(seen.accepted) <= set(stored)
        final = await until_terminal(ctx, cluster, stored, timeout_s=60)
        all_done_at = time.monotonic() - began
        cluster.check_alive()
    finally:
        cluster.stop()
        with Connection(broker_url) as connection:
            connection.default_channel.queue_delete(cluster.env["SAASSY_BROKER_QUEUE"])

    refused_posts, refused_gets = seen.refused("POST"), seen.refused("GET")
    assert refused_posts, seen.answers  # while it was away, submissions were refused
    assert refused_gets, seen.answers
    assert set(final.values()) == {TaskStatus.succeeded}, cluster.all_logs()
    await assert_each_ran_once_and_was_counted_once(ctx, account, stored, cluster)
    # Each loop says it once, waits and carries on: no traceback, no crash loop.
    scheduler_log = (tmp_path / "logs" / "scheduler-0.log").read_text()
    assert scheduler_log.count("database.unreachable") >= 1
    assert scheduler_log.count("loop=dispatcher") == 2  # gone, back
    for log in (scheduler_log, (tmp_path / "logs" / "worker-1.log").read_text()):
        assert "Traceback" not in log
    assert "Traceback" not in served.log.read_text()
    refused = refused_posts + refused_gets
    print(  # the measured gap, for the record (pytest -s)
        f"\npostgresql restart: away {stopped_at:.1f}-{back_at:.1f} s, 503s from "
        f"{min(refused):.1f} to {max(refused):.1f} s ({len(refused)} of {len(seen.answers)}), "
        f"{len(seen.accepted)} accepted, {len(stored) - len(seen.accepted)} stored though "
        f"refused, all done at {all_done_at:.1f} s"
    )
