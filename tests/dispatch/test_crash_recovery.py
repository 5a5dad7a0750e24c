"""`kill -9` during 100 running tasks, then a restart: none lost, none counted twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select

from saassy.kit.context import AppContext
from saassy.models import AttemptStatus, Task, TaskAttempt, TaskStatus, UsageRecord
from tests.conftest import SignUp
from tests.dispatch.conftest import CATALOG
from tests.dispatch.support import insert_tasks, set_plan, wait_for_status

ROOT = Path(__file__).resolve().parents[2]


def start_runner(database_url: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "tests.dispatch.crash_runner",
                database_url,
                str(data_dir),
                str(CATALOG),
            ],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


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
    first = start_runner(database_url, data_dir, log)
    try:
        deadline = time.monotonic() + 60
        while await count_running(ctx) < 100:
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "100 tasks never ran at once"
            await asyncio.sleep(0.05)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()

    second = start_runner(database_url, data_dir, log)
    try:
        final = await wait_for_status(ctx.sessionmaker, ids, timeout_s=90)
    finally:
        second.send_signal(signal.SIGKILL)
        second.wait()

    assert set(final.values()) == {TaskStatus.succeeded}, final
    async with ctx.sessionmaker() as session:
        lost = (
            await session.execute(
                select(func.count()).where(TaskAttempt.status == AttemptStatus.lost)
            )
        ).scalar_one()
        rows = (await session.execute(select(UsageRecord))).scalars().all()
        results = (await session.execute(select(Task.result).where(Task.id.in_(ids)))).scalars()
        assert all(result == {"slept": 1} for result in results)
    assert lost >= 100, "every attempt running at the kill was adopted as lost"
    keys = [(row.task_id, row.attempt_number, row.metric) for row in rows]
    assert len(keys) == len(set(keys))
    # Each task is billed for exactly one attempt: the one that finished.
    billed = {(row.task_id, row.attempt_number) for row in rows if row.metric == "wall_seconds"}
    assert len(billed) == 100
    assert {task_id for task_id, _ in billed} == set(ids)
    assert all(isinstance(task_id, uuid.UUID) for task_id, _ in billed)
