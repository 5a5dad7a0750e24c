"""Helpers for the engine tests: insert tasks as admission would, wait for their outcome."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from saassy.dispatch.engine import TaskEngine
from saassy.kit.time import utcnow
from saassy.models import (
    Organization,
    QuotaReservation,
    Task,
    TaskAttempt,
    TaskStatus,
    UsageRecord,
)
from saassy.plans.catalog import Catalog
from saassy.quotas import service as quotas
from saassy.runtime.fake import FakeRuntime, FakeScript
from tests.dispatch.conftest import CATALOG, EngineFactory


async def insert_tasks(
    sessionmaker: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    organization_id: uuid.UUID | str,
    count: int = 1,
    *,
    type: str = "noop",
    priority: int = 0,
    timeout_s: int = 10,
    input: Any = None,
    run_after_offset_s: float = 0.0,
    task_ids: Sequence[uuid.UUID] = (),
) -> list[uuid.UUID]:
    """Queued tasks with their monthly reservation, as admission inserts them.

    `task_ids` names the first tasks in advance, so a fake runtime can be scripted for them before a
    running engine may claim them.
    """
    organization_id = uuid.UUID(str(organization_id))
    chosen = list(task_ids)
    task_type = catalog.task_types[type]
    ids = []
    async with sessionmaker() as session, session.begin():
        for _ in range(count):
            reservation = await quotas.reserve(session, catalog, organization_id, "tasks")
            task = Task(
                id=chosen[len(ids)] if len(ids) < len(chosen) else uuid.uuid4(),
                organization_id=organization_id,
                type=type,
                status=TaskStatus.queued,
                priority=priority,
                input=input if input is not None else {"n": len(ids)},
                timeout_s=timeout_s,
                max_attempts=task_type.max_attempts,
                run_after=utcnow() + timedelta(seconds=run_after_offset_s),
                quota_reservation_id=reservation.id,
            )
            session.add(task)
            await session.flush()
            ids.append(task.id)
    return ids


async def set_plan(
    sessionmaker: async_sessionmaker[AsyncSession], organization_id: uuid.UUID | str, plan: str
) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Organization)
            .where(Organization.id == uuid.UUID(str(organization_id)))
            .values(plan=plan)
        )


async def task_row(sessionmaker: async_sessionmaker[AsyncSession], task_id: uuid.UUID) -> Task:
    async with sessionmaker() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        return task


async def reservation_of(
    sessionmaker: async_sessionmaker[AsyncSession], reservation_id: uuid.UUID | None
) -> QuotaReservation:
    assert reservation_id is not None
    async with sessionmaker() as session:
        found = await session.get(QuotaReservation, reservation_id)
        assert found is not None
        return found


async def attempts_of(
    sessionmaker: async_sessionmaker[AsyncSession], task_id: uuid.UUID
) -> list[TaskAttempt]:
    async with sessionmaker() as session:
        statement = (
            select(TaskAttempt).where(TaskAttempt.task_id == task_id).order_by(TaskAttempt.number)
        )
        return list((await session.execute(statement)).scalars())


async def usage_of(
    sessionmaker: async_sessionmaker[AsyncSession], task_id: uuid.UUID
) -> dict[tuple[int, str], float]:
    async with sessionmaker() as session:
        rows = (
            await session.execute(select(UsageRecord).where(UsageRecord.task_id == task_id))
        ).scalars()
        return {(row.attempt_number, row.metric): row.quantity for row in rows}


async def wait_for_status(
    sessionmaker: async_sessionmaker[AsyncSession],
    task_ids: Iterable[uuid.UUID],
    statuses: Iterable[TaskStatus] | None = None,
    timeout_s: float = 10.0,
) -> dict[uuid.UUID, TaskStatus]:
    """Poll the database until every task is in one of `statuses` (default: terminal)."""
    wanted = set(statuses) if statuses is not None else None
    ids = list(task_ids)
    deadline = time.monotonic() + timeout_s
    while True:
        async with sessionmaker() as session:
            rows = (
                await session.execute(select(Task.id, Task.status).where(Task.id.in_(ids)))
            ).all()
        current = {task_id: TaskStatus(status) for task_id, status in rows}
        done = all((s in wanted) if wanted is not None else s.terminal for s in current.values())
        if done and len(current) == len(ids):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"tasks not in {wanted or 'a terminal status'}: {current}")
        await asyncio.sleep(0.02)


ROOT = Path(__file__).resolve().parents[2]


def start_runner(
    database_url: str,
    data_dir: Path,
    log: Path,
    *options: str,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """The engine alone in a process of its own (`crash_runner`), to be killed by the test;
    `env` adds variables (settings such as SAASSY_PLATFORM_LOSS_RETRIES)."""
    with log.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "tests.dispatch.crash_runner",
                database_url,
                str(data_dir),
                str(CATALOG),
                *options,
            ],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        )


@contextmanager
def runner_process(
    database_url: str,
    data_dir: Path,
    log: Path,
    *options: str,
    env: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """`start_runner` for the length of a block, then killed with SIGKILL, as in a crash."""
    process = start_runner(database_url, data_dir, log, *options, env=env)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


@contextmanager
def statements_on(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements run on `engine` while open (SQLite's BEGIN left out)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.startswith("BEGIN"):
            seen.append(" ".join(statement.split()))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def two_hanging_tasks_running(
    sessionmaker: async_sessionmaker[AsyncSession], engine_factory: EngineFactory
) -> tuple[FakeRuntime, TaskEngine, set[uuid.UUID]]:
    """Start an engine with room for two on a runtime whose tasks never end; once two of the
    queued tasks run: the runtime, the engine and the two running tasks' ids."""
    runtime = FakeRuntime(FakeScript(hang=True))
    engine = engine_factory(runtime, parallelism=2)
    await engine.start()
    async with asyncio.timeout(10):
        while len(runtime.started) < 2:  # noqa: ASYNC110 - the fake runtime has no event
            await asyncio.sleep(0.01)
    running = {uuid.UUID(spec.name.split("-", 1)[1][:36]) for spec in runtime.started}
    await wait_for_status(sessionmaker, running, [TaskStatus.running])
    return runtime, engine, running
