"""`kill -9` of the platform: accepted tasks still run to the end (at least once), each lost
attempt billed what its sandbox really used, the monthly quota counted once per task."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from saassy.context import AppContext
from saassy.dispatch.supervisor import sandbox_name
from saassy.kit.time import as_utc, utcnow
from saassy.models import AttemptStatus, QuotaCounter, Task, TaskLogChunk, TaskStatus
from saassy.runtime.cgroups import SandboxCgroup
from tests.conftest import SignUp
from tests.dispatch.support import (
    attempts_of,
    insert_tasks,
    runner_process,
    set_plan,
    task_row,
    usage_of,
    wait_for_status,
)
from tests.runtime.conftest import require_isolation
from tests.runtime.support import own_process_runtime

TASKS = 16
LEASE_S = 8


async def running_and_logging(ctx: AppContext, ids: list[uuid.UUID]) -> tuple[int, int]:
    """How many of the tasks are running, and how many of them said "started"."""
    async with ctx.sessionmaker() as session:
        running = select(func.count()).where(Task.id.in_(ids), Task.status == TaskStatus.running)
        logging = select(func.count(func.distinct(TaskLogChunk.task_id))).where(
            TaskLogChunk.task_id.in_(ids)
        )
        return (await session.scalar(running) or 0), (await session.scalar(logging) or 0)


async def settled_cpu(cgroup: SandboxCgroup) -> float:
    """The killed sandbox's CPU once its last ticks have landed (the reading holds still)."""
    cpu = cgroup.cpu_seconds()
    while True:
        await asyncio.sleep(0.1)
        if (again := cgroup.cpu_seconds()) == cpu:
            return cpu
        cpu = again


async def test_kill_9_with_16_running_tasks_reruns_each_once_billed_what_it_used(
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    database_url: str,
    tmp_path: Path,
) -> None:
    account = await signup()
    await set_plan(ctx.sessionmaker, account.organization_id, "big")
    ids = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, TASKS, type="steady"
    )
    log = tmp_path / "runner.log"
    async with own_process_runtime() as runtime:
        require_isolation(runtime)
        assert runtime.host is not None
        assert runtime.host.cgroups is not None
        runner = (str(LEASE_S), str(runtime.work_root))
        with runner_process(database_url, tmp_path / "runner", log, *runner) as first:
            deadline = time.monotonic() + 60
            while await running_and_logging(ctx, ids) != (TASKS, TASKS):
                assert first.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the tasks never all ran at once"
                await asyncio.sleep(0.05)
        killed_at = utcnow()
        burned = {}
        for task_id in ids:
            cgroup = runtime.host.cgroups.existing(sandbox_name(task_id, 1))
            assert cgroup is not None
            burned[task_id] = await settled_cpu(cgroup)

        with runner_process(database_url, tmp_path / "runner", log, *runner):
            final = await wait_for_status(ctx.sessionmaker, ids, timeout_s=90)

    assert set(final.values()) == {TaskStatus.succeeded}, final
    for task_id in ids:
        task = await task_row(ctx.sessionmaker, task_id)
        assert (task.result, task.platform_losses) == ({"steady": 1}, 1)
        lost, rerun = await attempts_of(ctx.sessionmaker, task_id)  # re-run once, no more
        assert (lost.status, rerun.status) == (AttemptStatus.lost, AttemptStatus.succeeded)
        assert lost.cpu_seconds == pytest.approx(burned[task_id], rel=0.1)
        # Wall time: from its start to its sandbox's stop, the moment the platform died; not
        # to the lease's expiry, LEASE_S later.
        assert lost.started_at is not None
        assert lost.wall_seconds is not None
        ran = (killed_at - as_utc(lost.started_at)).total_seconds()
        assert ran - 2 <= lost.wall_seconds <= ran
        usage = await usage_of(ctx.sessionmaker, task_id)
        assert usage[(1, "cpu_seconds")] == pytest.approx(lost.cpu_seconds, abs=1e-6)
        assert usage[(1, "wall_seconds")] == pytest.approx(lost.wall_seconds, abs=1e-6)
        assert (2, "cpu_seconds") in usage
        shown = (await client.get(f"/api/v1/tasks/{task_id}", headers=account.headers)).json()
        assert (shown["platform_losses"], len(shown["attempts"])) == (1, 2)
    async with ctx.sessionmaker() as session:
        counted = await session.scalar(
            select(func.sum(QuotaCounter.used)).where(
                QuotaCounter.organization_id == uuid.UUID(account.organization_id),
                QuotaCounter.metric == "tasks",
            )
        )
    assert counted == TASKS  # one unit each, not one per attempt
