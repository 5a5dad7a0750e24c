"""Leases, fencing and adoption: a supervisor that lost its attempt writes nothing."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError

from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.dispatch.executor import AttemptRef
from saassy.dispatch.ledger import Metered, UsageLedger
from saassy.dispatch.outcome import AttemptOutcome, OutcomeFenced, write_outcome
from saassy.dispatch.repository import DispatchRepository
from saassy.dispatch.supervisor import AttemptSupervisor
from saassy.kit.time import utcnow
from saassy.models import AttemptStatus, Task, TaskAttempt, TaskStatus, UsageRecord
from saassy.runtime.base import Usage
from saassy.runtime.fake import DEFAULT_USAGE, FakeRuntime, FakeScript
from tests.conftest import Account, SignUp, on_postgresql
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import attempts_of, insert_tasks, task_row, usage_of, wait_for_status
from tests.vault.support import put_secret


async def expire_leases(ctx: AppContext, task_id: uuid.UUID) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(TaskAttempt)
            .where(TaskAttempt.task_id == task_id)
            .values(lease_expires_at=utcnow() - timedelta(seconds=1))
        )


async def test_a_stale_supervisor_cannot_write_over_a_newer_attempt(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, type="flaky"
    )
    engine = engine_factory(FakeRuntime(FakeScript(hang=True)), parallelism=1)
    [first] = await engine.dispatcher.dispatch_once()
    await wait_for_status(ctx.sessionmaker, [task_id], [TaskStatus.running])
    # Its process "dies": the lease runs out, adoption retries the task as attempt 2.
    await engine.executor.stop(grace_s=0)
    await expire_leases(ctx, task_id)
    assert await engine.executor.adopt() == 1
    engine.executor._stopping = False  # type: ignore[attr-defined]
    async with ctx.sessionmaker() as session, session.begin():  # skip the backoff
        await session.execute(update(Task).where(Task.id == task_id).values(run_after=utcnow()))
    [second] = await engine.dispatcher.dispatch_once()
    assert second.attempt_number == 2

    late = AttemptOutcome(
        AttemptStatus.succeeded,
        result={"stale": True},
        usage=Usage(cpu_seconds=9.0, peak_memory_bytes=1, wall_seconds=9.0),
    )
    with pytest.raises(OutcomeFenced):
        async with ctx.sessionmaker() as session, session.begin():
            await write_outcome(
                session,
                ctx.settings.catalog,
                first.task,
                attempt_number=first.attempt_number,
                executor_id=engine.executor.executor_id,
                outcome=late,
                now=utcnow(),
            )
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status in (TaskStatus.dispatched, TaskStatus.running)
    assert (task.result, task.attempt_count) == (None, 2)
    # Only what the stopped supervisor measured of attempt 1's killed sandbox: none of the late
    # write's 9 CPU-seconds.
    usage = await usage_of(ctx.sessionmaker, task_id)
    assert {number for number, _ in usage} == {1}
    assert usage[(1, "cpu_seconds")] == DEFAULT_USAGE.cpu_seconds
    attempt_1, attempt_2 = await attempts_of(ctx.sessionmaker, task_id)
    assert (attempt_1.status, attempt_1.end_reason) == ("lost", "lost")
    assert attempt_2.status in ("dispatched", "running")


async def test_a_supervisor_that_loses_its_lease_kills_its_sandbox_and_writes_nothing(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, type="flaky"
    )
    runtime = FakeRuntime(FakeScript(hang=True))
    engine = engine_factory(runtime, parallelism=1, lease=timedelta(seconds=0.6))
    [claim] = await engine.dispatcher.dispatch_once()
    await wait_for_status(ctx.sessionmaker, [task_id], [TaskStatus.running])
    supervisor = next(iter(engine.executor._running.values()))  # type: ignore[attr-defined]

    # Another dispatcher adopted it meanwhile (e.g. this process was paused past its lease).
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(TaskAttempt)
            .where(TaskAttempt.task_id == task_id)
            .values(status=AttemptStatus.lost, lease_expires_at=None)
        )
        await session.execute(update(Task).where(Task.id == task_id).values(status="queued"))

    assert await supervisor is None
    assert runtime.handles[f"task-{task_id}-attempt-{claim.attempt_number}"].killed
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.queued
    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == "lost"
    assert attempt.exit_code is None


@dataclass(frozen=True)
class ClaimedByHand:
    """One task, claimed for `executor_id` outside the engine, whose executor runs nothing."""

    engine: TaskEngine
    runtime: FakeRuntime
    task_id: uuid.UUID
    ref: AttemptRef


async def claimed_by_hand(
    ctx: AppContext,
    signup: SignUp,
    engine_factory: EngineFactory,
    executor_id: str | None = None,
    *,
    account: Account | None = None,
    task_type: str = "noop",
) -> ClaimedByHand:
    account = account or await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, type=task_type
    )
    runtime = FakeRuntime()
    engine = engine_factory(runtime, parallelism=1)
    engine.executor.parallelism = 0  # the claim is made here
    claimant = executor_id or engine.executor.executor_id
    async with ctx.sessionmaker() as session, session.begin():
        [claim] = await DispatchRepository(session).claim(
            [task_id], executor_id=claimant, now=utcnow(), lease=timedelta(seconds=30)
        )
    ref = AttemptRef(
        task_id=task_id,
        organization_id=claim.organization_id,
        attempt_number=claim.attempt_number,
        executor_id=engine.executor.executor_id,
    )
    return ClaimedByHand(engine, runtime, task_id, ref)


async def test_an_attempt_leased_to_another_executor_is_not_run(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    claimed = await claimed_by_hand(ctx, signup, engine_factory, executor_id="someone-else")
    deps = claimed.engine.executor.deps  # type: ignore[attr-defined]
    assert await AttemptSupervisor(deps, claimed.ref).run() is None
    assert claimed.runtime.started == []
    assert (await task_row(ctx.sessionmaker, claimed.task_id)).status == TaskStatus.dispatched


@pytest.mark.parametrize("platform_loss_retries", [2, 0])
async def test_adoption_at_start_reruns_lost_attempts_within_the_platform_loss_budget(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory, platform_loss_retries: int
) -> None:
    account = await signup()
    catalog = ctx.settings.catalog
    [retryable] = await insert_tasks(
        ctx.sessionmaker, catalog, account.organization_id, type="flaky"
    )
    [no_retries] = await insert_tasks(ctx.sessionmaker, catalog, account.organization_id)
    burned = Usage(cpu_seconds=2.5, peak_memory_bytes=3 * 2**20, wall_seconds=0.0)
    crashed = engine_factory(
        FakeRuntime(FakeScript(hang=True, usage=burned)),
        parallelism=4,
        platform_loss_retries=platform_loss_retries,
    )
    assert len(await crashed.dispatcher.dispatch_once()) == 2
    await wait_for_status(ctx.sessionmaker, [retryable, no_retries], [TaskStatus.running])
    await crashed.executor.stop(grace_s=0)  # kills and releases the leases, as a SIGTERM would

    restarted = engine_factory(
        FakeRuntime(), parallelism=4, platform_loss_retries=platform_loss_retries
    )
    await restarted.start()

    final = await wait_for_status(ctx.sessionmaker, [retryable, no_retries])
    # The flaky type's own retries cover a loss either way; `retries = 0` only the budget does.
    if platform_loss_retries:
        assert final == {retryable: TaskStatus.succeeded, no_retries: TaskStatus.succeeded}
    else:
        assert final == {retryable: TaskStatus.succeeded, no_retries: TaskStatus.failed}
        assert (await task_row(ctx.sessionmaker, no_retries)).error_code == "lost"
    assert [a.status for a in await attempts_of(ctx.sessionmaker, retryable)] == [
        "lost",
        "succeeded",
    ]
    for task_id in (retryable, no_retries):
        assert (await task_row(ctx.sessionmaker, task_id)).platform_losses == 1
        # The stop measured the sandboxes it killed (their cgroups went with the clean-up):
        # adoption bills that, once.
        usage = await usage_of(ctx.sessionmaker, task_id)
        assert (usage[(1, "cpu_seconds")], usage[(1, "peak_memory_mb")]) == (2.5, 3.0)
        assert usage[(1, "wall_seconds")] > 0


async def test_the_usage_ledger_counts_each_attempt_metric_once(
    ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    for quantity in (1.0, 2.0):  # a replay, even with another figure, records nothing
        async with ctx.sessionmaker() as session, session.begin():
            await UsageLedger(session).record(
                organization_id=uuid.UUID(account.organization_id),
                task_id=task_id,
                task_type="noop",
                attempt_number=1,
                usage=[Metered("cpu_seconds", quantity), Metered("action:publish", 1)],
                now=utcnow(),
            )
    async with ctx.sessionmaker() as session:
        count = (await session.execute(select(func.count()).select_from(UsageRecord))).scalar()
    assert count == 2
    assert (await usage_of(ctx.sessionmaker, task_id))[(1, "cpu_seconds")] == 1.0


async def test_an_outcome_racing_the_adoption_of_its_attempt_waits_instead_of_deadlocking(
    ctx: AppContext, signup: SignUp
) -> None:
    """Adoption locks the attempt, then the task; the outcome must take them in that order too."""
    if not on_postgresql():
        pytest.skip("row locks: SQLite's one write lock serialises these transactions whole")
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        [claim] = await DispatchRepository(session).claim(
            [task_id],
            executor_id="supervisor",
            now=utcnow(),
            lease=timedelta(seconds=30),
            running=True,
        )

    async def outcome() -> TaskStatus:
        async with ctx.sessionmaker() as session, session.begin():
            return await write_outcome(
                session,
                ctx.settings.catalog,
                claim.task,
                attempt_number=claim.attempt_number,
                executor_id="supervisor",
                outcome=AttemptOutcome(AttemptStatus.succeeded, usage=Usage(0.1, 1024, 0.2)),
                now=utcnow(),
            )

    async with ctx.sessionmaker() as adopter, adopter.begin():
        attempt_lock = select(TaskAttempt).where(TaskAttempt.task_id == task_id).with_for_update()
        await adopter.execute(attempt_lock)
        writing = asyncio.create_task(outcome())
        await asyncio.sleep(0.5)  # the outcome is now waiting on a row this transaction holds
        await adopter.execute(select(Task).where(Task.id == task_id).with_for_update())
        await adopter.execute(
            update(TaskAttempt)
            .where(TaskAttempt.task_id == task_id)
            .values(status=AttemptStatus.lost, lease_expires_at=None)
        )

    # Adoption won the attempt: the outcome is fenced off (and did not die in a deadlock).
    with pytest.raises(OutcomeFenced):
        await asyncio.wait_for(writing, 10)
    assert (await task_row(ctx.sessionmaker, task_id)).status == TaskStatus.running


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


async def test_a_database_restarting_as_an_attempt_starts_is_waited_out_not_lost(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    # A worker's supervisor reads its attempt first: a database shutting down at that moment
    # failed the supervisor, and adoption ran the attempt again once its lease ran out.
    claimed = await claimed_by_hand(ctx, signup, engine_factory)
    engine, task_id, ref = claimed.engine, claimed.task_id, claimed.ref
    deps = engine.executor.deps  # type: ignore[attr-defined]
    refusals = [DBAPIError("SELECT 1", {}, _DriverError("57P01"))] * 2  # admin shutdown

    def sessionmaker() -> Any:
        if refusals:
            raise refusals.pop()
        return ctx.sessionmaker()

    supervisor = AttemptSupervisor(replace(deps, sessionmaker=sessionmaker), ref)
    assert await supervisor.run() == TaskStatus.succeeded
    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == AttemptStatus.succeeded


async def supervised_through_a_restart(
    ctx: AppContext, claimed: ClaimedByHand
) -> TaskStatus | None:
    """The attempt supervised while the database refuses the second and third sessions (the
    first step after reading the attempt, and its first retry) as a shutting-down server does."""
    deps = claimed.engine.executor.deps  # type: ignore[attr-defined]
    calls = 0

    def sessionmaker() -> Any:
        nonlocal calls
        calls += 1
        if calls in (2, 3):
            raise DBAPIError("UPDATE", {}, _DriverError("57P01"))  # admin shutdown
        return ctx.sessionmaker()

    status = await AttemptSupervisor(replace(deps, sessionmaker=sessionmaker), claimed.ref).run()
    assert calls > 3
    return status


async def test_a_database_restarting_as_an_attempt_is_marked_running_is_waited_out_not_lost(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    # A Celery worker's supervisor marks its attempt running after reading it: a database
    # shutting down then failed the supervisor, and adoption ran the attempt a second time.
    claimed = await claimed_by_hand(ctx, signup, engine_factory)
    # After the read: the mark, and its first retry.
    assert await supervised_through_a_restart(ctx, claimed) == TaskStatus.succeeded
    [attempt] = await attempts_of(ctx.sessionmaker, claimed.task_id)
    assert attempt.status == AttemptStatus.succeeded


async def test_a_database_restarting_as_an_attempts_secrets_are_opened_is_waited_out_not_lost(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    # The supervisor opens the task's secrets after reading the attempt: a database shutting
    # down then failed the supervisor, and the attempt went to adoption as a platform loss.
    account = await signup()
    assert (await put_secret(client, account.headers, "API_TOKEN", "tok-123")).status_code == 201
    claimed = await claimed_by_hand(
        ctx, signup, engine_factory, account=account, task_type="secretive"
    )
    # After the read: the secrets, and their first retry.
    assert await supervised_through_a_restart(ctx, claimed) == TaskStatus.succeeded
    [spec] = claimed.runtime.started
    assert spec.secrets["API_TOKEN"].get_secret_value() == "tok-123"
    [attempt] = await attempts_of(ctx.sessionmaker, claimed.task_id)
    assert attempt.status == AttemptStatus.succeeded


async def test_marking_running_again_after_a_commit_that_went_through_is_not_a_lost_lease(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    # The commit of the mark reached the database, its answer did not: the retry finds the
    # attempt running already, for this executor.
    claimed = await claimed_by_hand(ctx, signup, engine_factory)
    ref = claimed.ref
    for _ in range(2):
        async with ctx.sessionmaker() as session, session.begin():
            repo = DispatchRepository(session)
            marked = await repo.mark_running(
                ref.task_id, ref.attempt_number, ref.executor_id, utcnow()
            )
            assert marked
    async with ctx.sessionmaker() as session, session.begin():
        repo = DispatchRepository(session)
        assert not await repo.mark_running(ref.task_id, ref.attempt_number, "another", utcnow())
