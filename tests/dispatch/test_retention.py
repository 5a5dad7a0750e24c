"""Retention and the orphan sweep: what storage and the logs keep, and for how long."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch import supervisor
from saassy.dispatch.engine import TaskEngine
from saassy.kit.time import utcnow
from saassy.models import AttemptStatus, TaskAttempt, TaskLogChunk, TaskStatus
from saassy.task_output.sweeper import StorageSweeper
from tests.conftest import SignUp
from tests.dispatch.outputs_support import (
    OUTPUTS_CATALOG,
    artifacts_listed,
    assert_storage_matches_rows,
    run_code,
    sandbox_engine,
)
from tests.dispatch.support import insert_tasks, set_plan, task_row, usage_of

__all__ = ["sandbox_engine"]

LOGS_AND_A_FILE = """
    import os
    print("hello from the task")
    open(os.environ["SAASSY_OUTPUT"] + "/kept.txt", "w").write("kept")
"""


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(config=OUTPUTS_CATALOG)


async def log_chunks(ctx: AppContext, task_id: uuid.UUID) -> int:
    async with ctx.sessionmaker() as session:
        rows = await session.execute(select(TaskLogChunk.id).where(TaskLogChunk.task_id == task_id))
        return len(rows.all())


async def test_retention_deletes_artifacts_and_logs_but_keeps_the_task_and_its_usage(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, sandbox_engine: TaskEngine
) -> None:
    account = await signup()
    await set_plan(ctx.sessionmaker, account.organization_id, "keeps_a_week")
    task_id = await run_code(ctx, sandbox_engine, account.organization_id, LOGS_AND_A_FILE)
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.succeeded
    assert task.finished_at is not None
    usage = await usage_of(ctx.sessionmaker, task_id)
    assert await log_chunks(ctx, task_id) > 0
    ended = task.finished_at

    sweeper = StorageSweeper(
        ctx.sessionmaker,
        ctx.settings.catalog,
        sandbox_engine.storage,
        clock=lambda: ended + timedelta(days=7) - timedelta(minutes=1),
    )
    report = await sweeper.sweep()
    assert (report.artifacts_expired, report.log_chunks_expired) == (0, 0)
    assert len(await sandbox_engine.storage.keys()) == 1

    sweeper.clock = lambda: ended + timedelta(days=7, minutes=1)
    report = await sweeper.sweep()
    assert report.artifacts_expired == 1
    assert report.log_chunks_expired > 0
    assert await sandbox_engine.storage.keys() == []
    assert await artifacts_listed(client, account.headers, task_id) == []
    assert await log_chunks(ctx, task_id) == 0
    logs = await client.get(f"/api/v1/tasks/{task_id}/logs", headers=account.headers)
    assert (logs.status_code, logs.text) == (200, "")
    shown = await client.get(f"/api/v1/tasks/{task_id}", headers=account.headers)
    assert (shown.status_code, shown.json()["status"]) == (200, "succeeded")
    assert await usage_of(ctx.sessionmaker, task_id) == usage
    storage = (await client.get("/api/v1/usage", headers=account.headers)).json()["storage"]
    assert (storage["used_mb"], storage["retention_days"]) == (0.0, 7)


async def test_a_plan_without_retention_keeps_everything(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, sandbox_engine: TaskEngine
) -> None:
    account = await signup()  # the default plan: no retention_days
    task_id = await run_code(ctx, sandbox_engine, account.organization_id, LOGS_AND_A_FILE)
    sweeper = StorageSweeper(
        ctx.sessionmaker,
        ctx.settings.catalog,
        sandbox_engine.storage,
        clock=lambda: utcnow() + timedelta(days=3650),
    )
    report = await sweeper.sweep()
    assert (report.artifacts_expired, report.log_chunks_expired) == (0, 0)
    assert len(await artifacts_listed(client, account.headers, task_id)) == 1


async def test_objects_without_rows_are_removed_unless_their_attempt_is_live(
    ctx: AppContext, signup: SignUp, sandbox_engine: TaskEngine, tmp_path: Path
) -> None:
    account = await signup()
    org = account.organization_id
    done = await run_code(ctx, sandbox_engine, org, LOGS_AND_A_FILE)
    [waiting] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, org, type="writer", run_after_offset_s=3600
    )
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            TaskAttempt(
                task_id=waiting,
                organization_id=uuid.UUID(org),
                number=1,
                status=AttemptStatus.running,
            )
        )
    source = tmp_path / "source"
    source.write_bytes(b"left by a crash")
    storage = sandbox_engine.storage
    [kept] = await storage.keys()
    orphans = [
        f"{org}/{done}/1/orphan.txt",
        f"{org}/{done}/1/.partial-0123abcd",
        f"{org}/{done}/2/x",
    ]
    live = f"{org}/{waiting}/1/not-yet.txt"
    for key in [*orphans, live]:
        await storage.put(key, source)

    report = await StorageSweeper(ctx.sessionmaker, ctx.settings.catalog, storage).sweep()

    assert report.orphans_removed == len(orphans)
    assert sorted(await storage.keys()) == sorted([kept, live])


async def test_objects_are_discarded_when_the_outcome_is_not_written(
    ctx: AppContext, signup: SignUp, sandbox_engine: TaskEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored_at_the_write: list[list[str]] = []
    written = asyncio.Event()
    write_outcome = supervisor.write_outcome

    async def failing_write(*args: object, **kwargs: object) -> TaskStatus:
        stored_at_the_write.append(await sandbox_engine.storage.keys())
        written.set()
        raise RuntimeError("the database went away")

    monkeypatch.setattr(supervisor, "write_outcome", failing_write)
    account = await signup()
    await insert_tasks(
        ctx.sessionmaker,
        ctx.settings.catalog,
        account.organization_id,
        type="writer",
        input={"code": textwrap.dedent(LOGS_AND_A_FILE)},
    )
    sandbox_engine.notify_submitted()
    await asyncio.wait_for(written.wait(), 30)
    monkeypatch.setattr(supervisor, "write_outcome", write_outcome)
    assert len(stored_at_the_write[0]) == 1  # stored, then the write failed
    async with asyncio.timeout(5):
        while await sandbox_engine.storage.keys():  # noqa: ASYNC110 - storage sends no events
            await asyncio.sleep(0.05)
    await assert_storage_matches_rows(ctx, sandbox_engine)
