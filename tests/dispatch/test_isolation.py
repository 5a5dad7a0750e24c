"""No silent downgrade: where no sandbox can be made, tasks fail with `isolation_unavailable`,
`/ready` and `/api/v1/system` say why, and only an explicit opt-in runs them (never as root)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from saassy.context import AppContext
from saassy.models import ReservationStatus, TaskStatus
from saassy.runtime.process import ProcessRuntime
from tests.conftest import SignUp
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import insert_tasks, reservation_of, task_row, wait_for_status
from tests.runtime.support import own_work_root
from tests.runtime.test_abuse import is_sandbox_uid


async def test_tasks_fail_with_isolation_unavailable_and_ready_says_why(
    app: FastAPI,
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    engine_factory: EngineFactory,
    no_bubblewrap_at_all: None,
    tmp_path: Path,
) -> None:
    engine = engine_factory(ProcessRuntime(work_dir=own_work_root(tmp_path)))
    ctx.task_engine = engine
    await engine.start()
    try:
        account = await signup()
        org = uuid.UUID(account.organization_id)
        [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, org)
        engine.notify_submitted()
        await wait_for_status(ctx.sessionmaker, [task_id])
        task = await task_row(ctx.sessionmaker, task_id)
        assert task.status == TaskStatus.failed
        assert task.error_code == "isolation_unavailable"
        assert task.error is not None
        assert "no sandbox can be made on this server" in task.error
        assert "bwrap" not in task.error  # the host's details are the operator's, not shown
        assert task.attempt_count == 1  # not retried: no retry makes a sandbox appear
        reservation = await reservation_of(ctx.sessionmaker, task.quota_reservation_id)
        assert reservation.status == ReservationStatus.released  # nothing ran: not charged

        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "unavailable"
        assert "no bubblewrap" in ready.json()["isolation"]
        system = (await client.get("/api/v1/system")).json()
        assert system["runtime"]["isolation"] == "unavailable"
        assert "SAASSY_ALLOW_UNISOLATED" in system["runtime"]["unavailable_reason"]
    finally:
        ctx.task_engine = None


@pytest.mark.skipif(os.geteuid() != 0, reason="drops from root to the sandbox uid")
async def test_with_the_opt_in_a_task_runs_unisolated_as_the_sandbox_uid(
    ctx: AppContext,
    signup: SignUp,
    engine_factory: EngineFactory,
    no_bubblewrap_at_all: None,
    tmp_path: Path,
) -> None:
    runtime = ProcessRuntime(allow_unisolated=True, work_dir=own_work_root(tmp_path))
    engine = engine_factory(runtime)
    await engine.start()
    account = await signup()
    org = uuid.UUID(account.organization_id)
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, org, type="whoami")
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id])
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.succeeded, task.error
    assert is_sandbox_uid(task.result["uid"])
