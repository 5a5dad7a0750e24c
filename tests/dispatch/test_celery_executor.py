"""The Celery executor for real: `saassy scheduler` and `saassy worker` processes on Redis and
on RabbitMQ, PostgreSQL the source of truth; tasks submitted through the API."""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from kombu import Connection  # type: ignore[import-untyped]
from sqlalchemy import func, select

from saassy.app import create_app
from saassy.config import ConfigError, Settings, load_settings
from saassy.context import AppContext
from saassy.dispatch.broker import check_scale_out
from saassy.models import AttemptStatus, QuotaCounter, Task, TaskAttempt, TaskLogChunk, TaskStatus
from saassy.runtime.process import ProcessRuntime
from tests.conftest import TEST_SECRET, TEST_VAULT_KEY, Account, SignUp
from tests.dispatch.celery_cluster import (
    BROKERS,
    CELERY_CATALOG,
    Cluster,
    cluster_env,
    require_broker,
    require_postgresql,
    saassy_command,
)
from tests.dispatch.conftest import CATALOG
from tests.dispatch.support import attempts_of, set_plan, task_row, usage_of
from tests.runtime.conftest import require_isolation, require_sandbox


@pytest.fixture(params=sorted(BROKERS))
def broker_url(request: pytest.FixtureRequest) -> str:
    return require_broker(request.param)


@pytest.fixture
def cluster(database_url: str, broker_url: str, tmp_path: Path) -> Iterator[Cluster]:
    require_postgresql()
    queue = f"saassy-test-{uuid.uuid4().hex[:10]}"
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Cluster(cluster_env(database_url, broker_url, queue, tmp_path / "host"), logs)
    try:
        yield running
    finally:
        running.stop()
        with Connection(broker_url) as connection:
            connection.default_channel.queue_delete(queue)


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(config=CELERY_CATALOG)


async def submit(
    client: httpx.AsyncClient, account: Account, task_type: str, count: int
) -> list[uuid.UUID]:
    ids = []
    for _ in range(count):
        response = await client.post(
            "/api/v1/tasks", json={"type": task_type}, headers=account.headers
        )
        assert response.status_code == 202, response.text
        ids.append(uuid.UUID(response.json()["id"]))
    return ids


async def statuses(ctx: AppContext, ids: list[uuid.UUID]) -> dict[uuid.UUID, TaskStatus]:
    async with ctx.sessionmaker() as session:
        rows = (await session.execute(select(Task.id, Task.status).where(Task.id.in_(ids)))).all()
    return {task_id: TaskStatus(status) for task_id, status in rows}


async def until_terminal(
    ctx: AppContext,
    cluster: Cluster,
    ids: list[uuid.UUID],
    timeout_s: float,
    on_each_look: Callable[[], Awaitable[None]] | None = None,
) -> dict[uuid.UUID, TaskStatus]:
    deadline = time.monotonic() + timeout_s
    while True:
        if on_each_look is not None:
            await on_each_look()
        current = await statuses(ctx, ids)
        if len(current) == len(ids) and all(s.terminal for s in current.values()):
            return current
        cluster.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"tasks not finished: {current}\n{cluster.all_logs()}")
        await asyncio.sleep(0.05)


async def until_running_and_logging(
    ctx: AppContext, cluster: Cluster, ids: list[uuid.UUID], timeout_s: float = 60
) -> None:
    """Until every task runs and its program has printed its first line."""
    deadline = time.monotonic() + timeout_s
    while True:
        async with ctx.sessionmaker() as session:
            running = await session.scalar(
                select(func.count()).where(Task.id.in_(ids), Task.status == TaskStatus.running)
            )
            logging = await session.scalar(
                select(func.count(func.distinct(TaskLogChunk.task_id))).where(
                    TaskLogChunk.task_id.in_(ids)
                )
            )
        if (running, logging) == (len(ids), len(ids)):
            return
        cluster.check_alive()
        if time.monotonic() > deadline:
            pytest.fail(f"never all running: {running}, {logging}\n{cluster.all_logs()}")
        await asyncio.sleep(0.05)


ORGANIZATIONS = 20
TASKS_EACH = 50  # 1,000 tasks: every organization still queued far past its limit (CI time)
PLAN_LIMITS = {"pair": 2, "big": 50}


async def submit_many(
    client: httpx.AsyncClient,
    account: Account,
    task_type: str,
    count: int,
    task_input: dict[str, object] | None = None,
) -> list[uuid.UUID]:
    """`count` submissions, a few at a time."""
    ids: list[uuid.UUID] = []
    for start in range(0, count, 10):
        ids.extend(
            uuid.UUID(task_id)
            for task_id in await asyncio.gather(
                *(
                    submitted_id(client, account, task_type, task_input or {})
                    for _ in range(start, min(count, start + 10))
                )
            )
        )
    return ids


async def submitted_id(
    client: httpx.AsyncClient, account: Account, task_type: str, task_input: dict[str, object]
) -> str:
    response = await client.post(
        "/api/v1/tasks", json={"type": task_type, "input": task_input}, headers=account.headers
    )
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


async def test_two_schedulers_and_two_workers_run_1000_tasks_of_20_organizations_exactly_once(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, cluster: Cluster
) -> None:
    require_sandbox()
    for _ in range(2):
        cluster.scheduler()
        cluster.worker(concurrency=4)
    accounts = [await signup() for _ in range(ORGANIZATIONS)]
    limits: dict[uuid.UUID, int] = {}
    for number, account in enumerate(accounts):
        plan = "pair" if number % 2 else "big"
        await set_plan(ctx.sessionmaker, account.organization_id, plan)
        limits[uuid.UUID(account.organization_id)] = PLAN_LIMITS[plan]
    ids = [
        task_id
        for submitted in await asyncio.gather(
            *(submit_many(client, account, "noop", TASKS_EACH) for account in accounts)
        )
        for task_id in submitted
    ]
    assert len(set(ids)) == ORGANIZATIONS * TASKS_EACH
    samples = 0
    over: list[tuple[uuid.UUID, int]] = []

    async def sample_every_organization() -> None:
        nonlocal samples
        async with ctx.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(Task.organization_id, func.count())
                    .where(Task.status.in_([TaskStatus.dispatched, TaskStatus.running]))
                    .group_by(Task.organization_id)
                )
            ).all()
        samples += 1
        over.extend((org, at_once) for org, at_once in rows if at_once > limits[org])

    final = await until_terminal(
        ctx, cluster, ids, timeout_s=600, on_each_look=sample_every_organization
    )

    assert set(final.values()) == {TaskStatus.succeeded}, cluster.all_logs()
    assert samples > 10  # the limits were looked at while the tasks ran, not only at the end
    assert over == []  # two schedulers never exceed any organization's plan
    async with ctx.sessionmaker() as session:
        attempts = (
            await session.execute(
                select(TaskAttempt.task_id, TaskAttempt.status, TaskAttempt.executor_id).where(
                    TaskAttempt.task_id.in_(ids)
                )
            )
        ).all()
    assert sorted(task_id for task_id, _, _ in attempts) == sorted(ids)  # one each: none twice
    assert {status for _, status, _ in attempts} == {AttemptStatus.succeeded}
    assert all(executor.startswith("celery:") for _, _, executor in attempts)  # workers ran them
    assert (await task_row(ctx.sessionmaker, ids[-1])).result == {"ok": 1}


RUNNING_AT_THE_KILL = 100
KILL_LEASE_S = 10  # as a deployment would: 50 supervisors a worker on a loaded CI machine
HOLD_S = 35  # time for 100 sandboxes to start under load; re-runs after it end at once


async def test_kill_9_of_a_worker_running_100_tasks_loses_none_and_bills_each_attempt_once(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, cluster: Cluster
) -> None:
    require_isolation(ProcessRuntime())  # cgroups: the killed sandboxes' CPU is measured
    cluster.env["SAASSY_EXECUTOR_PARALLELISM"] = str(RUNNING_AT_THE_KILL)
    cluster.env["SAASSY_TASK_LEASE_S"] = str(KILL_LEASE_S)
    cluster.scheduler()
    workers = {cluster.worker(concurrency=RUNNING_AT_THE_KILL // 2).pid: None for _ in range(2)}
    accounts = [await signup(), await signup()]  # each plan allows 50 at once
    until = time.time() + HOLD_S
    ids = [
        task_id
        for account in accounts
        for task_id in await submit_many(
            client, account, "hold", RUNNING_AT_THE_KILL // 2, {"until": until}
        )
    ]
    await until_running_and_logging(ctx, cluster, ids, timeout_s=HOLD_S)
    running_on = {
        task_id: (await attempts_of(ctx.sessionmaker, task_id))[0].executor_id for task_id in ids
    }
    # Executor ids read celery:<host>:<pid>:<random>: kill the worker that runs the first.
    doomed_pid = int(str(running_on[ids[0]]).split(":")[2])
    assert doomed_pid in workers
    doomed = next(p for p in cluster.processes if p.pid == doomed_pid)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    assert time.time() < until, "the kill came after the tasks' end: it hit no running task"
    final = await until_terminal(ctx, cluster, ids, timeout_s=HOLD_S + 4 * KILL_LEASE_S)

    assert set(final.values()) == {TaskStatus.succeeded}, cluster.all_logs()
    killed = [task_id for task_id in ids if running_on[task_id] == running_on[ids[0]]]
    assert 0 < len(killed) < len(ids)  # the kill hit tasks of one worker, mid-run
    for task_id in ids:
        attempts = await attempts_of(ctx.sessionmaker, task_id)
        if task_id not in killed:  # on the survivor: untouched
            assert [a.status for a in attempts] == [AttemptStatus.succeeded], cluster.all_logs()
            continue
        lost, rerun = attempts  # re-run once, no more
        assert (lost.status, rerun.status) == (AttemptStatus.lost, AttemptStatus.succeeded)
        assert lost.executor_id != rerun.executor_id
        # Adopted by the surviving worker on the same host, which measured the dead sandbox.
        assert lost.cpu_seconds is not None
        assert lost.cpu_seconds > 0
        usage = await usage_of(ctx.sessionmaker, task_id)
        assert usage[(1, "cpu_seconds")] == pytest.approx(lost.cpu_seconds, abs=1e-6)
        assert (2, "cpu_seconds") in usage
        assert (await task_row(ctx.sessionmaker, task_id)).platform_losses == 1
    async with ctx.sessionmaker() as session:
        counted = await session.scalar(
            select(func.sum(QuotaCounter.used)).where(
                QuotaCounter.organization_id.in_([uuid.UUID(a.organization_id) for a in accounts]),
                QuotaCounter.metric == "tasks",
            )
        )
    assert counted == len(ids)  # one unit each, not one per attempt


async def test_cancel_reaches_a_task_running_on_a_worker(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, cluster: Cluster
) -> None:
    require_sandbox()
    cluster.scheduler()
    cluster.worker(concurrency=2)
    account = await signup()
    [task_id] = await submit(client, account, "sleeper", 1)
    await until_running_and_logging(ctx, cluster, [task_id])

    response = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=account.headers)
    assert response.status_code == 202, response.text
    # The sleeper would run 60 s: only the worker's kill ends it within this wait.
    final = await until_terminal(ctx, cluster, [task_id], timeout_s=30)

    assert final[task_id] is TaskStatus.canceled
    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == AttemptStatus.canceled


async def test_a_cold_shutdown_kills_at_once_and_hands_the_attempt_to_adoption(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, cluster: Cluster
) -> None:
    require_sandbox()
    cluster.scheduler()
    worker = cluster.worker(concurrency=2)
    account = await signup()
    [task_id] = await submit(client, account, "sleeper", 1)
    await until_running_and_logging(ctx, cluster, [task_id])

    worker.send_signal(signal.SIGQUIT)  # Celery's cold shutdown
    # The sleeper would run 60 s: the worker exits within this wait only if it killed it.
    assert worker.wait(timeout=30) == 0, cluster.all_logs()
    deadline = time.monotonic() + 30
    while (task := await task_row(ctx.sessionmaker, task_id)).platform_losses == 0:
        assert time.monotonic() < deadline, cluster.all_logs()
        await asyncio.sleep(0.1)

    assert task.platform_losses == 1  # to be run again, under the platform-loss budget
    lost = (await attempts_of(ctx.sessionmaker, task_id))[0]
    assert lost.status == AttemptStatus.lost
    assert lost.wall_seconds is not None  # measured by the worker before it freed the sandbox
    assert "Traceback" not in cluster.all_logs()


async def test_the_api_runs_no_engine_with_the_celery_executor(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(executor="celery", broker_url="redis://127.0.0.1:1/0")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert app.state.ctx.task_engine is None


REFUSALS = {
    "sqlite": (
        {"database_url": "sqlite:////nonexistent/saassy.db"},
        "set SAASSY_DATABASE_URL to PostgreSQL",
    ),
    "visibility": (
        {"broker_visibility_timeout_s": 100},
        "Redis's visibility timeout is 100 s, not longer than the hard time limit of 195 s",
    ),
    "rabbitmq default": (
        {"broker_url": "amqp://guest:hunter2@127.0.0.1:1//", "config": CATALOG},
        "set consumer_timeout = 3676000 (milliseconds) in rabbitmq.conf, then "
        "SAASSY_BROKER_VISIBILITY_TIMEOUT_S=3676",
    ),
    "unreachable": ({}, "SAASSY_BROKER_URL: the redis broker is unreachable"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_scale_out_refuses_what_cannot_work(case: str, tmp_path: Path) -> None:
    overrides, expected = REFUSALS[case]
    values: dict[str, object] = {
        "env": "test",
        "database_url": "postgresql://postgres@127.0.0.1:1/none",
        "secret_key": TEST_SECRET,
        "vault_keys": TEST_VAULT_KEY,
        "config": CELERY_CATALOG,
        "executor": "celery",
        "broker_url": "redis://:hunter2@127.0.0.1:1/0",
        **overrides,
    }
    with pytest.raises(ConfigError, match=re.escape(expected)) as refused:
        check_scale_out(load_settings(**values))
    assert "hunter2" not in str(refused.value)
    assert "127.0.0.1:1" not in str(refused.value)


@pytest.mark.parametrize(
    ("command", "extra", "expected"),
    [
        ("worker", {}, "error: SAASSY_BROKER_URL: the redis broker is unreachable"),
        (
            "scheduler",
            {"SAASSY_DATABASE_URL": "sqlite:////nonexistent/saassy.db"},
            "set SAASSY_DATABASE_URL to PostgreSQL",
        ),
    ],
)
def test_worker_and_scheduler_stop_with_one_line(
    command: str, extra: dict[str, str], expected: str, tmp_path: Path
) -> None:
    env = cluster_env(
        "postgresql://postgres@127.0.0.1:1/none", "redis://127.0.0.1:1/0", "q", tmp_path
    )
    log = tmp_path / "out.log"
    process = saassy_command([command], {**env, **extra}, log)
    assert process.wait(timeout=60) == 1
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1, lines
    assert expected in lines[0]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"executor": "celery"}, "SAASSY_EXECUTOR=celery needs SAASSY_BROKER_URL"),
        (
            {"executor": "celery", "broker_url": "kafka://user:hunter2@mq:9092"},
            "kafka scheme is not a broker Saassy supports",
        ),
        ({"broker_url": "redis://127.0.0.1:6379/0"}, "only apply with SAASSY_EXECUTOR=celery"),
        ({"broker_visibility_timeout_s": 4000}, "only apply with SAASSY_EXECUTOR=celery"),
        ({"executor": "kubernetes"}, "SAASSY_EXECUTOR"),
    ],
)
def test_broker_settings_are_refused_where_they_cannot_apply(
    overrides: dict[str, object], expected: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=expected) as refused:
        load_settings(
            env="test",
            database_url=f"sqlite:///{tmp_path / 'saassy.db'}",
            secret_key=TEST_SECRET,
            vault_keys=TEST_VAULT_KEY,
            **overrides,
        )
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"storage": "s3", "s3_bucket": "artifacts"}, "needs SAASSY_REDIS_URL in production"),
        ({"redis_url": "redis://127.0.0.1:6379/0"}, "needs SAASSY_STORAGE=s3 in production"),
    ],
)
def test_production_workers_need_shared_events_and_storage(
    overrides: dict[str, object], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings(
            env="production",
            database_url="postgresql://saassy:hunter2@db.internal/saassy",
            secret_key=TEST_SECRET,
            vault_keys=TEST_VAULT_KEY,
            executor="celery",
            broker_url="redis://127.0.0.1:6379/1",
            **overrides,
        )
