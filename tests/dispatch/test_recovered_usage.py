"""A sandbox outliving its killed platform process is measured by adoption and billed once."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from saassy.context import AppContext
from saassy.dispatch.adoption import LeftoverSandboxes, adopt_orphans
from saassy.dispatch.repository import DispatchRepository
from saassy.dispatch.supervisor import sandbox_name
from saassy.events.memory import MemoryEventBus
from saassy.kit.time import as_utc, utcnow
from saassy.models import AttemptStatus, TaskAttempt, TaskLogChunk, TaskStatus
from saassy.runtime.process import ProcessRuntime
from tests.conftest import SignUp
from tests.dispatch.support import (
    attempts_of,
    insert_tasks,
    runner_process,
    task_row,
    usage_of,
    wait_for_status,
)
from tests.runtime.conftest import require_isolation
from tests.runtime.support import leave_burning_sandbox, own_process_runtime

METRICS = {"cpu_seconds", "peak_memory_mb", "wall_seconds", "memory_gb_seconds"}
HOST = socket.gethostname()


async def wait_for_log(ctx: AppContext, task_id: uuid.UUID, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        async with ctx.sessionmaker() as session:
            statement = select(TaskLogChunk.data).where(TaskLogChunk.task_id == task_id)
            if any(text in data for data in (await session.execute(statement)).scalars()):
                return
        assert time.monotonic() < deadline, f"the task never logged {text!r}"
        await asyncio.sleep(0.05)


async def test_a_killed_platforms_burning_sandbox_is_billed_once_after_restart(
    ctx: AppContext, signup: SignUp, database_url: str, tmp_path: Path
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, type="burner"
    )
    name = sandbox_name(task_id, 1)
    log = tmp_path / "runner.log"
    async with own_process_runtime() as runtime:
        require_isolation(runtime)
        assert runtime.host is not None
        # A lease far longer than a restart: the new process's sweep runs before the lease
        # expires, and must leave the sandbox's figure for adoption.
        runner = ("8", str(runtime.work_root))
        no_reruns = {"SAASSY_PLATFORM_LOSS_RETRIES": "0"}  # it would burn again for a minute
        with runner_process(database_url, tmp_path / "runner", log, *runner, env=no_reruns):
            await wait_for_log(ctx, task_id, "burning", timeout_s=30)
            await asyncio.sleep(1.0)
        killed_at = utcnow()
        cgroup = runtime.host.cgroups.existing(name)
        assert cgroup is not None
        burned = cgroup.cpu_seconds()
        assert burned > 0.2

        with runner_process(database_url, tmp_path / "runner", log, *runner, env=no_reruns):
            final = await wait_for_status(ctx.sessionmaker, [task_id], timeout_s=60)
            deadline = time.monotonic() + 10  # freed just after the outcome's commit
            while runtime.host.cgroups.existing(name) or list(runtime.work_root.glob(f"{name}@*")):
                assert time.monotonic() < deadline, "adoption did not free the leftover"
                await asyncio.sleep(0.05)

    assert final == {task_id: TaskStatus.failed}
    assert (await task_row(ctx.sessionmaker, task_id)).error_code == "lost"
    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == AttemptStatus.lost
    assert attempt.cpu_seconds == pytest.approx(burned, rel=0.1)
    assert attempt.peak_memory_bytes
    assert attempt.started_at is not None
    # Wall time: from its start to when its platform was last seen alive (the sandbox died
    # with it), to within one lease-keeper tick; not to its lease's expiry, 8 s later.
    ran = (killed_at - as_utc(attempt.started_at)).total_seconds()
    assert attempt.wall_seconds is not None
    assert ran - 2 <= attempt.wall_seconds <= ran
    usage = await usage_of(ctx.sessionmaker, task_id)
    assert set(usage) == {(1, metric) for metric in METRICS}  # one row per metric
    assert usage[(1, "cpu_seconds")] == pytest.approx(attempt.cpu_seconds, abs=1e-6)
    assert usage[(1, "wall_seconds")] == pytest.approx(attempt.wall_seconds, abs=1e-6)
    # The burner type's 64 MB, reserved for as long as the attempt is billed for.
    assert usage[(1, "memory_gb_seconds")] == pytest.approx(
        64 / 1024 * attempt.wall_seconds, abs=1e-6
    )


async def lost_attempt(
    ctx: AppContext, organization_id: str, executor_id: str, *, expired: bool = True
) -> tuple[uuid.UUID, str]:
    """A burner task claimed by `executor_id`, as a process that then died leaves it."""
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, organization_id, type="burner"
    )
    async with ctx.sessionmaker() as session, session.begin():
        await DispatchRepository(session).claim(
            [task_id],
            executor_id=executor_id,
            now=utcnow(),
            lease=timedelta(seconds=30),
            running=True,
        )
        if expired:
            await session.execute(
                update(TaskAttempt)
                .where(TaskAttempt.task_id == task_id)
                .values(lease_expires_at=utcnow() - timedelta(seconds=1))
            )
    return task_id, sandbox_name(task_id, 1)


def workspace_for(tmp_path: Path, name: str) -> Path:
    workspace = tmp_path / name
    workspace.mkdir()
    (workspace / "input.json").write_text("{}")
    return workspace


async def test_two_adopters_at_once_record_a_leftovers_usage_once(
    ctx: AppContext, signup: SignUp, tmp_path: Path
) -> None:
    account = await signup()
    task_id, name = await lost_attempt(ctx, account.organization_id, f"local:{HOST}:1:dead")
    async with own_process_runtime() as runtime:
        require_isolation(runtime)
        assert runtime.host is not None
        await leave_burning_sandbox(
            workspace_for(tmp_path, name), name, runtime.work_root, burn_s=0.5
        )
        cgroup = runtime.host.cgroups.existing(name)
        assert cgroup is not None

        # Two processes adopting at the same moment, each with its own view of the host.
        catalog, events = ctx.settings.catalog, MemoryEventBus()
        adopters = [
            LeftoverSandboxes(ProcessRuntime(work_dir=runtime.work_root), HOST) for _ in range(2)
        ]
        adopted = await asyncio.gather(
            *(adopt_orphans(ctx.sessionmaker, catalog, events, each) for each in adopters)
        )
        assert sorted(adopted) == [0, 1]
        assert await adopt_orphans(ctx.sessionmaker, catalog, events, adopters[0]) == 0
        assert runtime.host.cgroups.existing(name) is None
        await events.close()

    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == AttemptStatus.lost
    assert attempt.cpu_seconds is not None
    assert attempt.cpu_seconds > 0.2
    usage = await usage_of(ctx.sessionmaker, task_id)
    assert set(usage) == {(1, metric) for metric in METRICS}
    assert usage[(1, "cpu_seconds")] == pytest.approx(attempt.cpu_seconds, abs=1e-6)


async def test_adoption_leaves_other_hosts_and_live_leases_alone(
    ctx: AppContext, signup: SignUp, tmp_path: Path
) -> None:
    account = await signup()
    elsewhere, elsewhere_name = await lost_attempt(
        ctx, account.organization_id, "local:another-host:1:dead"
    )
    leased, leased_name = await lost_attempt(
        ctx, account.organization_id, f"local:{HOST}:1:alive", expired=False
    )
    async with own_process_runtime() as runtime:
        require_isolation(runtime)
        assert runtime.host is not None
        for name in (elsewhere_name, leased_name):
            await leave_burning_sandbox(workspace_for(tmp_path, name), name, runtime.work_root)

        leftovers = LeftoverSandboxes(runtime, HOST)
        events = MemoryEventBus()
        assert await adopt_orphans(ctx.sessionmaker, ctx.settings.catalog, events, leftovers) == 1
        await events.close()

        # Another host's attempt: lost, unmeasured; whatever shares its name here is not its own.
        [attempt] = await attempts_of(ctx.sessionmaker, elsewhere)
        assert (attempt.status, attempt.cpu_seconds) == (AttemptStatus.lost, None)
        assert await usage_of(ctx.sessionmaker, elsewhere) == {}
        assert runtime.host.cgroups.existing(elsewhere_name) is not None
        # A lease still running: its owner may be alive, nothing of it is touched.
        [attempt] = await attempts_of(ctx.sessionmaker, leased)
        assert attempt.status == AttemptStatus.running
        assert runtime.host.cgroups.existing(leased_name) is not None
