"""`kill -9` during 100 running tasks, then a restart: none lost, none counted twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from sqlalchemy import func, select

from saassy.context import AppContext
from saassy.models import AttemptStatus, Task, TaskAttempt, TaskLogChunk, TaskStatus, UsageRecord
from tests.conftest import SignUp
from tests.dispatch.support import insert_tasks, runner_process, set_plan, wait_for_status
from tests.runtime.conftest import require_isolation
from tests.runtime.support import own_process_runtime


async def count_logging(ctx: AppContext) -> int:
    """Tasks whose sandbox runs: it said "started"."""
    async with ctx.sessionmaker() as session:
        statement = select(func.count(func.distinct(TaskLogChunk.task_id)))
        return int((await session.execute(statement)).scalar_one())


async def count_running(ctx: AppContext) -> int:
    async with ctx.sessionmaker() as session:
        statement = select(func.count()).where(Task.status == TaskStatus.running)
        return int((await session.execute(statement)).scalar_one())


async def test_kill_9_during_100_running_tasks_then_restart(
    ctx: AppContext, signup: SignUp, database_url: str, tmp_path: Path
) -> None:
    account = await signup()
    await set_plan(ctx.sessionmaker, account.organization_id, "huge")
    ids = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, 100, type="sleepy"
    )
    data_dir = tmp_path / "runner"
    log = tmp_path / "runner.log"
    async with own_process_runtime() as runtime:  # no other test run's sweep frees its leftovers
        require_isolation(runtime)
        runner = ("2", str(runtime.work_root))  # lease (s), sandboxes' work root
        with runner_process(database_url, data_dir, log, *runner) as first:
            deadline = time.monotonic() + 60
            while await count_running(ctx) < 100 or await count_logging(ctx) < 10:
                assert first.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "100 tasks never ran at once"
                await asyncio.sleep(0.05)

        with runner_process(database_url, data_dir, log, *runner):
            final = await wait_for_status(ctx.sessionmaker, ids, timeout_s=90)

    assert set(final.values()) == {TaskStatus.succeeded}, final
    async with ctx.sessionmaker() as session:
        attempts = (await session.execute(select(TaskAttempt))).scalars().all()
        rows = (await session.execute(select(UsageRecord))).scalars().all()
        results = (await session.execute(select(Task.result).where(Task.id.in_(ids)))).scalars()
        assert all(result == {"slept": 1} for result in results)
    lost = [attempt for attempt in attempts if attempt.status == AttemptStatus.lost]
    assert len(lost) >= 100, "every attempt running at the kill was adopted as lost"
    keys = [(row.task_id, row.attempt_number, row.metric) for row in rows]
    assert len(keys) == len(set(keys))
    # Billed: exactly the attempts whose rows hold measured usage: each task's finished attempt,
    # each lost one whose leftover sandbox was measured, and any that failed and was retried (a
    # loaded machine can fail a start; the retry is the task's, and so is what it used).
    billed = {(row.task_id, row.attempt_number) for row in rows if row.metric == "wall_seconds"}
    recorded = {(a.task_id, a.number) for a in attempts if a.cpu_seconds is not None}
    finished = {(a.task_id, a.number) for a in attempts if a.status == AttemptStatus.succeeded}
    measured = {(a.task_id, a.number) for a in lost if a.cpu_seconds is not None}
    odd = {
        (a.task_id, a.number): (a.status, a.end_reason, a.error, a.cpu_seconds)
        for a in attempts
        if (a.task_id, a.number) in billed ^ recorded
        or a.status not in {AttemptStatus.succeeded, AttemptStatus.lost}
    }
    assert billed == recorded, odd
    assert finished | measured <= billed, odd
    assert {task_id for task_id, _ in finished} == set(ids)
    if runtime.measures_cgroup_usage:  # the sandboxes that had started left their cgroups
        assert len(measured) >= 10
