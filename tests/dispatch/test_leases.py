"""Only attempts a live supervisor watches keep their leases; a dead supervisor's run out."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from saassy.context import AppContext
from saassy.dispatch import lease
from saassy.dispatch.adoption import adopt_orphans
from saassy.dispatch.executor import AttemptRef
from saassy.dispatch.lease import LeaseKeeper
from saassy.dispatch.local import LocalExecutor
from saassy.dispatch.repository import DispatchRepository
from saassy.dispatch.supervisor import AttemptSupervisor
from saassy.kit.time import as_utc, utcnow
from saassy.models import AttemptStatus, TaskStatus
from saassy.runtime.fake import FakeRuntime, FakeScript
from tests.conftest import SignUp
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import attempts_of, insert_tasks, wait_for_status
from tests.events.support import RecordedLog

EXECUTOR = "local:host:1:test"


async def test_the_keeper_renews_only_the_attempts_it_watches(
    ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    watched_id, crashed_id = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, 2
    )
    claimed_at = utcnow()
    async with ctx.sessionmaker() as session, session.begin():
        claims = await DispatchRepository(session).claim(
            [watched_id, crashed_id],
            executor_id=EXECUTOR,
            now=claimed_at,
            lease=timedelta(seconds=5),
            running=True,
        )
    watched = next(claim for claim in claims if claim.task_id == watched_id)
    keeper = LeaseKeeper(ctx.sessionmaker, EXECUTOR, lease=timedelta(minutes=10))
    watch = keeper.watch(
        AttemptRef(
            task_id=watched_id,
            organization_id=watched.organization_id,
            attempt_number=watched.attempt_number,
            executor_id=EXECUTOR,
        )
    )

    await keeper.renew()

    assert not watch.lost.is_set()
    [renewed] = await attempts_of(ctx.sessionmaker, watched_id)
    [left] = await attempts_of(ctx.sessionmaker, crashed_id)
    assert renewed.lease_expires_at is not None
    assert as_utc(renewed.lease_expires_at) > claimed_at + timedelta(minutes=9)
    # Its supervisor is gone: the claim's lease stands, and runs out.
    assert left.lease_expires_at is not None
    assert as_utc(left.lease_expires_at) == pytest.approx(
        claimed_at + timedelta(seconds=5), abs=timedelta(milliseconds=1)
    )


async def test_a_supervisor_that_fails_is_forgotten_and_hands_its_attempt_back(
    ctx: AppContext,
    signup: SignUp,
    engine_factory: EngineFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def fail(self: AttemptSupervisor) -> None:
        raise RuntimeError("a bug in the platform")

    monkeypatch.setattr(AttemptSupervisor, "_run", fail)
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    engine = engine_factory(FakeRuntime(FakeScript()))
    assert len(await engine.dispatcher.dispatch_once()) == 1
    if supervisors := list(engine.executor._running.values()):  # type: ignore[attr-defined]
        await asyncio.wait(supervisors)

    assert engine.executor.leases.watches == {}  # type: ignore[attr-defined]
    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == AttemptStatus.running
    assert attempt.lease_expires_at is not None
    assert as_utc(attempt.lease_expires_at) <= utcnow()  # adoption may take it now
    assert await engine.executor.adopt() == 1
    [attempt, *_] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == AttemptStatus.lost


async def test_a_renewal_that_came_late_is_logged_with_its_gap(
    ctx: AppContext, signup: SignUp, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        [claim] = await DispatchRepository(session).claim(
            [task_id], executor_id=EXECUTOR, now=utcnow(), lease=timedelta(seconds=3), running=True
        )
    recorded = RecordedLog()
    monkeypatch.setattr(lease, "log", recorded)
    keeper = LeaseKeeper(ctx.sessionmaker, EXECUTOR, lease=timedelta(seconds=3), poll_s=0.05)
    keeper.watch(
        AttemptRef(
            task_id=task_id,
            organization_id=claim.organization_id,
            attempt_number=claim.attempt_number,
            executor_id=EXECUTOR,
        )
    )
    keeper.start()
    try:
        await asyncio.sleep(1.5)  # renewed on time (every second): nothing to say
        assert recorded.events() == []
        time.sleep(2.2)  # noqa: ASYNC251 - the stalled event loop under test
        for _ in range(200):  # the renewal after the stall, however long a busy database takes
            await asyncio.sleep(0.05)
            if recorded.entries:
                break
    finally:
        await keeper.stop()

    [(event, fields)] = recorded.entries
    assert event == "lease renewal late"
    # At least the stall (2.2 s, after a renewal at most 1 s before it); a busy machine adds to
    # it, so the upper bound only says it is the gap and not, say, time since the claim's epoch.
    assert 2.0 < fields["seconds_since_last"] < 30
    assert fields["lease_s"] == 3.0
    assert fields["attempts"] == 1


async def test_a_process_never_adopts_what_its_own_supervisors_still_run(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    runtime = FakeRuntime(FakeScript(hang=True))
    engine = engine_factory(runtime, lease=timedelta(seconds=1))
    executor = engine.executor
    assert isinstance(executor, LocalExecutor)
    executor.leases.poll_s = 60  # a keeper that renews nothing for a minute: a stalled loop
    executor.leases.start()
    assert len(await engine.dispatcher.dispatch_once()) == 1
    await wait_for_status(ctx.sessionmaker, [task_id], [TaskStatus.running])
    await asyncio.sleep(1.2)
    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.lease_expires_at is not None
    assert as_utc(attempt.lease_expires_at) < utcnow()

    assert await executor.adopt() == 0

    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == AttemptStatus.running
    [(_, watch)] = executor.leases.watches.values()
    assert not watch.lost.is_set()
    assert len(runtime.started) == 1  # not re-run
    # Another process cannot know the attempt lives: the lease ran out, it takes it, and the
    # supervisor here is fenced off at its keeper's next renewal.
    assert await adopt_orphans(ctx.sessionmaker, ctx.settings.catalog, ctx.events) == 1
    [attempt, *_] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == AttemptStatus.lost
    await executor.leases.renew()
    assert watch.lost.is_set()


async def test_once_its_keeper_stopped_a_process_adopts_what_a_stuck_supervisor_held(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    engine = engine_factory(FakeRuntime(FakeScript(hang=True)), lease=timedelta(seconds=1))
    executor = engine.executor
    assert isinstance(executor, LocalExecutor)
    executor.leases.start()
    assert len(await engine.dispatcher.dispatch_once()) == 1
    await wait_for_status(ctx.sessionmaker, [task_id], [TaskStatus.running])
    await executor.leases.stop()  # as a shutdown does, with the supervisor still there
    await asyncio.sleep(1.2)

    assert await executor.adopt() == 1
    [attempt, *_] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == AttemptStatus.lost
