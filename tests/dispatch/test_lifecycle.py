"""An attempt from claim to outcome on the fake runtime: statuses, results, usage, quotas."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import update

from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.events.bus import TaskEvent
from saassy.kit.time import utcnow
from saassy.models import AttemptStatus, ReservationStatus, Task, TaskStatus
from saassy.runtime.base import EndReason, OutputLine, Usage
from saassy.runtime.fake import FakeRuntime, FakeScript
from tests.conftest import SignUp
from tests.dispatch.support import (
    attempts_of,
    insert_tasks,
    reservation_of,
    task_row,
    usage_of,
    wait_for_status,
)


def sandbox(task_id: uuid.UUID, attempt: int = 1) -> str:
    return f"task-{task_id}-attempt-{attempt}"


async def test_a_task_goes_queued_dispatched_running_succeeded(
    ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    org = uuid.UUID(account.organization_id)
    subscription = engine.events.subscribe(org)
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, org, input={"x": 1})
    fake_runtime.script(
        sandbox(task_id),
        FakeScript(
            output=(OutputLine("stdout", b"hello"), OutputLine("stderr", b"warning")),
            files={"result.json": b'{"answer": 42}', "report.txt": b"done"},
            usage=Usage(cpu_seconds=1.5, peak_memory_bytes=64 * 2**20, wall_seconds=2.0),
        ),
    )
    engine.notify_submitted()

    await wait_for_status(ctx.sessionmaker, [task_id])
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.succeeded
    assert task.result == {"answer": 42}
    assert task.error is None
    assert task.started_at is not None
    assert task.finished_at is not None
    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert (attempt.status, attempt.exit_code, attempt.end_reason) == ("succeeded", 0, "exited")
    assert attempt.lease_expires_at is None
    assert await usage_of(ctx.sessionmaker, task_id) == {
        (1, "cpu_seconds"): 1.5,
        (1, "peak_memory_mb"): 64.0,
        (1, "wall_seconds"): 2.0,
        (1, "memory_gb_seconds"): 0.125,  # the type's 64 MB reserved for 2 s
    }
    reservation = await reservation_of(ctx.sessionmaker, task.quota_reservation_id)
    assert reservation.status == ReservationStatus.settled
    spec = fake_runtime.started[0]
    assert spec.argv == ("/bin/true",)
    assert spec.limits.timeout_s == 10
    assert spec.limits.memory_mb == 64
    assert spec.tenant == str(task.organization_id)  # its CPU weight is its organization's
    # The supervisor cleans up after it has written the outcome the test waited for.
    for _ in range(200):
        if not spec.output_dir.exists():
            break
        await asyncio.sleep(0.01)
    assert not spec.output_dir.exists(), "the work dir is cleaned up"

    statuses = []
    while len(statuses) < 3:
        event = await subscription.get(1.0)
        assert isinstance(event, TaskEvent)
        if event.kind == "task.status":
            statuses.append(event.data["status"])
    assert statuses == ["dispatched", "running", "succeeded"]
    await subscription.close()


async def test_a_non_zero_exit_fails_with_its_exit_code(
    ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    fake_runtime.script(sandbox(task_id), FakeScript(exit_code=3))
    engine.notify_submitted()

    await wait_for_status(ctx.sessionmaker, [task_id])
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.failed
    assert task.error_code == "exit_code"
    assert "code 3" in (task.error or "")
    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.exit_code == 3
    assert attempt.status == AttemptStatus.failed
    # The work happened: the monthly task is counted.
    reservation = await reservation_of(ctx.sessionmaker, task.quota_reservation_id)
    assert reservation.status == ReservationStatus.settled


async def test_a_timeout_ends_timed_out(
    ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, timeout_s=1
    )
    fake_runtime.script(sandbox(task_id), FakeScript(hang=True))
    engine.notify_submitted()

    await wait_for_status(ctx.sessionmaker, [task_id], timeout_s=5)
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.timed_out
    assert task.error == "exceeded its timeout of 1 s"
    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.end_reason == "timed_out"


async def test_out_of_memory_is_not_retried(
    ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, type="flaky"
    )
    fake_runtime.script(sandbox(task_id), FakeScript(reason=EndReason.out_of_memory))
    engine.notify_submitted()

    await wait_for_status(ctx.sessionmaker, [task_id])
    task = await task_row(ctx.sessionmaker, task_id)
    assert (task.status, task.error_code, task.attempt_count) == ("failed", "out_of_memory", 1)


async def test_invalid_result_json_fails_clearly(
    ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    fake_runtime.script(sandbox(task_id), FakeScript(files={"result.json": b"{not json"}))
    engine.notify_submitted()

    await wait_for_status(ctx.sessionmaker, [task_id])
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.failed
    assert task.error_code == "invalid_output"
    assert "result.json is not valid JSON" in (task.error or "")


async def test_retries_wait_for_the_backoff_and_keep_each_attempt(
    ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, type="flaky"
    )
    fake_runtime.script(
        sandbox(task_id, 1),
        FakeScript(
            exit_code=1,
            output=(OutputLine("stderr", b"first try fails"),),
            usage=Usage(cpu_seconds=0.5, peak_memory_bytes=2**20, wall_seconds=0.5),
        ),
    )
    fake_runtime.script(
        sandbox(task_id, 2),
        FakeScript(
            output=(OutputLine("stdout", b"second try works"),),
            files={"result.json": b"[2]"},
            usage=Usage(cpu_seconds=0.25, peak_memory_bytes=2**21, wall_seconds=0.25),
        ),
    )
    engine.notify_submitted()

    await wait_for_status(ctx.sessionmaker, [task_id])
    task = await task_row(ctx.sessionmaker, task_id)
    assert (task.status, task.result, task.attempt_count) == ("succeeded", [2], 2)
    first, second = await attempts_of(ctx.sessionmaker, task_id)
    assert (first.status, first.exit_code, second.status, second.exit_code) == (
        "failed",
        1,
        "succeeded",
        0,
    )
    assert first.finished_at is not None
    assert second.started_at is not None
    waited = (second.started_at - first.finished_at).total_seconds()
    assert waited >= 0.3, f"attempt 2 started {waited:.3f} s after attempt 1: no backoff"
    usage = await usage_of(ctx.sessionmaker, task_id)
    assert usage[(1, "cpu_seconds")] == 0.5
    assert usage[(2, "cpu_seconds")] == 0.25
    # One monthly task, counted once for both attempts.
    reservation = await reservation_of(ctx.sessionmaker, task.quota_reservation_id)
    assert reservation.settled_amount == 1


async def test_retries_run_out(
    ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, type="flaky"
    )
    fake_runtime.default = FakeScript(exit_code=7)
    engine.notify_submitted()

    await wait_for_status(ctx.sessionmaker, [task_id], timeout_s=10)
    task = await task_row(ctx.sessionmaker, task_id)
    assert (task.status, task.attempt_count) == ("failed", 3)
    assert [a.exit_code for a in await attempts_of(ctx.sessionmaker, task_id)] == [7, 7, 7]


async def test_a_type_removed_from_the_catalog_fails_and_gives_the_quota_back(
    ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, run_after_offset_s=3600
    )
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Task).where(Task.id == task_id).values(type="withdrawn", run_after=utcnow())
        )
    engine.notify_submitted()

    await wait_for_status(ctx.sessionmaker, [task_id])
    task = await task_row(ctx.sessionmaker, task_id)
    assert (task.status, task.error_code) == ("failed", "task_type_gone")
    reservation = await reservation_of(ctx.sessionmaker, task.quota_reservation_id)
    assert reservation.status == ReservationStatus.released
    assert fake_runtime.started == []
