"""Claims: fairness across organizations, per-organization concurrency, priority, cancel."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.dispatch.outcome import AttemptOutcome, write_outcome
from saassy.dispatch.repository import DispatchRepository
from saassy.dispatch.wakeup import Wakeup
from saassy.kit.time import utcnow
from saassy.models import (
    AttemptStatus,
    Organization,
    ReservationStatus,
    Task,
    TaskStatus,
)
from saassy.runtime.fake import FakeRuntime, FakeScript
from tests.conftest import Account, SignUp, client_for, on_postgresql
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import (
    attempts_of,
    insert_tasks,
    reservation_of,
    set_plan,
    statements_on,
    task_row,
    two_hanging_tasks_running,
    wait_for_status,
)

HANG = FakeScript(hang=True)


async def test_a_flooding_organization_does_not_starve_another(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    flooder, other = await signup(), await signup()
    for account in (flooder, other):
        await set_plan(ctx.sessionmaker, account.organization_id, "big")
    catalog = ctx.settings.catalog
    await insert_tasks(ctx.sessionmaker, catalog, flooder.organization_id, 300)
    mine = await insert_tasks(ctx.sessionmaker, catalog, other.organization_id, 3)
    engine = engine_factory(FakeRuntime(HANG), parallelism=6)

    claims = await engine.dispatcher.dispatch_once()

    per_org = Counter(str(claim.organization_id) for claim in claims)
    # Round-robin: one each per turn while both have work, whoever queued first.
    assert per_org == {flooder.organization_id: 3, other.organization_id: 3}
    assert {claim.task_id for claim in claims} >= set(mine)


async def flood_beside_a_quiet_one(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> tuple[Account, Account, TaskEngine]:
    """Two organizations on a big plan, one with 20 queued; an engine of 3 slots and a reserve."""
    flooder, quiet = await signup(), await signup()
    for account in (flooder, quiet):
        await set_plan(ctx.sessionmaker, account.organization_id, "big")
    await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, flooder.organization_id, 20)
    return flooder, quiet, engine_factory(FakeRuntime(HANG), parallelism=3, reserved_slots=1)


async def test_a_reserved_slot_lets_an_idle_organization_start_while_another_fills_the_rest(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    flooder, quiet, engine = await flood_beside_a_quiet_one(ctx, signup, engine_factory)
    catalog = ctx.settings.catalog

    # The flood takes every ordinary slot, never the reserved one.
    flood = await engine.dispatcher.dispatch_once()
    assert Counter(claim.organization_id for claim in flood) == {
        uuid.UUID(flooder.organization_id): 3
    }
    assert await engine.dispatcher.dispatch_once() == []

    # An organization with nothing running gets it at once, without waiting for a slot to free;
    # one slot only, and no more once it has something running.
    mine = await insert_tasks(ctx.sessionmaker, catalog, quiet.organization_id, 2)
    [claim] = await engine.dispatcher.dispatch_once()
    assert claim.task_id == mine[0]
    assert await engine.dispatcher.dispatch_once() == []
    assert engine.dispatcher.executor.active == 4


async def test_the_reserve_also_serves_an_organization_running_less_than_its_fair_share(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    _, quiet, engine = await flood_beside_a_quiet_one(ctx, signup, engine_factory)
    catalog = ctx.settings.catalog
    executor = engine.dispatcher.executor
    assert len(await engine.dispatcher.dispatch_once()) == 3  # the flood, every ordinary slot
    mine = await insert_tasks(ctx.sessionmaker, catalog, quiet.organization_id, 3)
    [first] = await engine.dispatcher.dispatch_once()  # nothing running: the reserve
    assert first.task_id == mine[0]

    # With a task running, the quiet organization still takes the reserve whenever it is free
    # (here: an ordinary slot more), while it runs less than its fair share: (slots + reserve)
    # over the two organizations with work.
    served = []
    for parallelism in (4, 5):
        executor.parallelism = parallelism
        [claim] = await engine.dispatcher.dispatch_once()
        served.append(claim.task_id)
        assert await engine.dispatcher.dispatch_once() == []
    assert served == mine[1:]

    # The flood runs its fair share (3 of 7): a free reserve is never its.
    executor.parallelism = 6
    assert executor.free_slots == 0
    assert executor.free_reserved_slots == 1
    assert await engine.dispatcher.dispatch_once() == []


async def test_organizations_at_their_limit_after_the_cursor_do_not_hide_one_with_room(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    # A tenant with many small-plan organizations, each running its plan's two: the round
    # looked only at the few after the cursor, found them all at their limit, claimed nothing
    # and so never moved on; the idle organization behind them waited, the reserve free, until
    # one of theirs ended.
    accounts = sorted([await signup() for _ in range(9)], key=lambda a: a.organization_id)
    first, crowd, quiet = accounts[0], accounts[1:8], accounts[8]
    catalog = ctx.settings.catalog
    await insert_tasks(ctx.sessionmaker, catalog, first.organization_id, 1)
    for account in crowd:
        await insert_tasks(ctx.sessionmaker, catalog, account.organization_id, 4)
    engine = engine_factory(FakeRuntime(HANG), parallelism=16, reserved_slots=1)
    assert len(await engine.dispatcher.dispatch_once()) == 15  # one, and two each of the crowd
    await insert_tasks(ctx.sessionmaker, catalog, first.organization_id, 1)
    assert len(await engine.dispatcher.dispatch_once()) == 1  # the last ordinary slot

    mine = await insert_tasks(ctx.sessionmaker, catalog, quiet.organization_id, 1)
    [claim] = await engine.dispatcher.dispatch_once()
    assert claim.task_id == mine[0]


async def test_organizations_with_no_task_due_yet_do_not_hide_one_with_a_due_task(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    # Tasks in retry backoff keep their organizations in the ring, with nothing to claim.
    accounts = sorted([await signup() for _ in range(8)], key=lambda a: a.organization_id)
    catalog = ctx.settings.catalog
    for account in accounts[:7]:
        await insert_tasks(
            ctx.sessionmaker, catalog, account.organization_id, 1, run_after_offset_s=600
        )
    mine = await insert_tasks(ctx.sessionmaker, catalog, accounts[7].organization_id, 1)
    engine = engine_factory(FakeRuntime(HANG), parallelism=2, reserved_slots=1)
    [claim] = await engine.dispatcher.dispatch_once()
    assert claim.task_id == mine[0]


async def test_a_reserved_slot_given_further_round_leaves_the_others_their_turn(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    accounts = sorted([await signup() for _ in range(4)], key=lambda a: a.organization_id)
    o1, o2, o3, o4 = (uuid.UUID(account.organization_id) for account in accounts)
    for organization_id in (o1, o2, o3, o4):
        await set_plan(ctx.sessionmaker, organization_id, "big")
    catalog = ctx.settings.catalog
    engine = engine_factory(FakeRuntime(HANG), parallelism=4, reserved_slots=1)
    executor = engine.dispatcher.executor
    for organization_id in (o2, o3, o1):
        await insert_tasks(ctx.sessionmaker, catalog, organization_id, 1)
        await engine.dispatcher.dispatch_once()
    for organization_id in (o2, o3, o1):
        await insert_tasks(ctx.sessionmaker, catalog, organization_id, 2)
    await insert_tasks(ctx.sessionmaker, catalog, o4, 1)
    # The last ordinary slot is o2's turn; the reserve goes out of turn to o4, which has
    # nothing running, past o3.
    claims = await engine.dispatcher.dispatch_once()
    assert [claim.organization_id for claim in claims] == [o2, o4]

    # The next slot to free is o3's: the reserve given past it did not take its turn.
    executor.parallelism = 6
    [claim] = await engine.dispatcher.dispatch_once()
    assert claim.organization_id == o3


async def test_round_robin_resumes_where_the_last_round_stopped(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    accounts = [await signup() for _ in range(3)]
    for account in accounts:
        await set_plan(ctx.sessionmaker, account.organization_id, "big")
        await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id, 5)
    engine = engine_factory(FakeRuntime(HANG), parallelism=1)
    engine.dispatcher.executor.parallelism = 0

    served = []
    for _ in range(3):
        engine.dispatcher.executor.parallelism += 1  # room for exactly one more each round
        [claim] = await engine.dispatcher.dispatch_once()
        served.append(claim.organization_id)
    assert len(set(served)) == 3


async def test_an_organization_never_runs_more_than_its_plan_allows(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    account = await signup()  # the "small" plan: 2 at a time
    ids = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id, 5)
    runtime = FakeRuntime(HANG)
    engine = engine_factory(runtime, parallelism=8)

    assert len(await engine.dispatcher.dispatch_once()) == 2
    assert await engine.dispatcher.dispatch_once() == []
    running = await wait_for_status(ctx.sessionmaker, ids[:2], [TaskStatus.running])
    assert len(running) == 2

    # One ends: exactly one more is dispatched.
    await runtime.handles[f"task-{ids[0]}-attempt-1"].kill()
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Task).where(Task.id == ids[0]).values(cancel_requested_at=utcnow())
        )
    await wait_for_status(ctx.sessionmaker, [ids[0]])
    assert len(await engine.dispatcher.dispatch_once()) == 1


async def test_priority_first_then_first_in_first_out(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    account = await signup()
    await set_plan(ctx.sessionmaker, account.organization_id, "big")
    catalog = ctx.settings.catalog
    early = await insert_tasks(ctx.sessionmaker, catalog, account.organization_id, 2)
    urgent = await insert_tasks(ctx.sessionmaker, catalog, account.organization_id, 1, priority=5)
    await insert_tasks(ctx.sessionmaker, catalog, account.organization_id, 2)
    not_due = await insert_tasks(
        ctx.sessionmaker, catalog, account.organization_id, 1, priority=9, run_after_offset_s=60
    )
    engine = engine_factory(FakeRuntime(HANG), parallelism=3)

    claims = await engine.dispatcher.dispatch_once()

    assert [claim.task_id for claim in claims] == urgent + early
    assert not_due[0] not in {claim.task_id for claim in claims}


async def test_cancel_ends_a_running_sandbox_within_two_seconds(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, timeout_s=60
    )
    runtime = FakeRuntime(HANG)
    engine = engine_factory(runtime)
    await engine.start()
    await wait_for_status(ctx.sessionmaker, [task_id], [TaskStatus.running])

    # What the cancel endpoint does: set the flag in its transaction (no wake-up hook needed).
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Task).where(Task.id == task_id).values(cancel_requested_at=utcnow())
        )
    started = time.monotonic()
    await wait_for_status(ctx.sessionmaker, [task_id], timeout_s=2.0)
    assert time.monotonic() - started < 2.0
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.canceled
    assert runtime.handles[f"task-{task_id}-attempt-1"].killed
    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == "canceled"
    reservation = await reservation_of(ctx.sessionmaker, task.quota_reservation_id)
    assert reservation.status == ReservationStatus.settled  # it ran: counted


async def test_the_executor_cancel_hook_is_immediate(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    engine = engine_factory(FakeRuntime(HANG))
    await engine.start()
    await wait_for_status(ctx.sessionmaker, [task_id], [TaskStatus.running])

    assert await engine.executor.cancel(task_id)
    assert not await engine.executor.cancel(uuid.uuid4())
    await wait_for_status(ctx.sessionmaker, [task_id], timeout_s=1.0)
    assert (await task_row(ctx.sessionmaker, task_id)).status == TaskStatus.canceled


async def test_a_task_canceled_before_it_starts_gives_its_quota_back(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    runtime = FakeRuntime()
    engine = engine_factory(runtime)
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Task).where(Task.id == task_id).values(cancel_requested_at=utcnow())
        )
    await engine.start()

    await wait_for_status(ctx.sessionmaker, [task_id])
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.canceled
    assert runtime.started == []
    reservation = await reservation_of(ctx.sessionmaker, task.quota_reservation_id)
    assert reservation.status == ReservationStatus.released


class _WatchedWakeup(Wakeup):
    """A wake-up event that tells when the dispatcher has gone idle, waiting on it."""

    def __init__(self) -> None:
        super().__init__()
        self.idle = asyncio.Event()

    async def wait(self) -> Literal[True]:
        self.idle.set()
        return await super().wait()


async def _woken_and_idle(wakeup: _WatchedWakeup, wake: Callable[[], None]) -> None:
    wakeup.idle.clear()
    wake()
    async with asyncio.timeout(5):
        await wakeup.idle.wait()  # took the wake-up, did what it does, waits again


async def _flood_in_every_slot(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory, poll_s: float
) -> tuple[uuid.UUID, uuid.UUID, TaskEngine, _WatchedWakeup]:
    """Two organizations on a big plan; the first's 20 tasks fill an engine's three ordinary
    slots, its reserved one free: the flood's and the quiet one's ids, the engine, its wake-up."""
    flooder, quiet = await signup(), await signup()
    for account in (flooder, quiet):
        await set_plan(ctx.sessionmaker, account.organization_id, "big")
    await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, flooder.organization_id, 20)
    wakeup = _WatchedWakeup()
    engine = engine_factory(
        FakeRuntime(HANG), parallelism=3, reserved_slots=1, poll_s=poll_s, wakeup=wakeup
    )
    await _woken_and_idle(wakeup, lambda: asyncio.ensure_future(engine.start()))
    assert engine.executor.active == 3  # the flood took every ordinary slot
    return uuid.UUID(flooder.organization_id), uuid.UUID(quiet.organization_id), engine, wakeup


async def test_a_crowded_organizations_submissions_buy_no_round_while_only_the_reserve_is_free(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    # Every submission of a flood woke a round that could only offer the reserve, which the
    # flood never gets: a transaction and two queries each, claiming nothing.
    flood, quiet, engine, wakeup = await _flood_in_every_slot(ctx, signup, engine_factory, 30)
    catalog = ctx.settings.catalog

    def rounds(seen: list[str]) -> int:
        return sum(1 for statement in seen if statement.startswith("WITH RECURSIVE ring"))

    with statements_on(ctx.engine) as seen:
        for _ in range(3):
            await _woken_and_idle(wakeup, lambda: engine.notify_submitted([flood]))
    assert rounds(seen) == 0
    with statements_on(ctx.engine) as seen:  # anything else may have changed: a round
        await _woken_and_idle(wakeup, engine.notify_submitted)
    assert rounds(seen) == 1

    # Another organization's submission still gets the reserve at once.
    [mine] = await insert_tasks(ctx.sessionmaker, catalog, quiet, 1)
    await _woken_and_idle(wakeup, lambda: engine.notify_submitted([quiet]))
    assert (await task_row(ctx.sessionmaker, mine)).status == TaskStatus.running
    assert engine.executor.active == 4


async def test_a_crowded_organizations_flood_of_submissions_does_not_put_off_the_poll(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    # Each skipped wake-up restarted the poll's timer: while the flood submitted faster than
    # `poll_s`, a task only a poll finds (a retry come due, another process's submission) got
    # the free reserve only when one of the flood's tasks ended.
    poll_s = 0.3
    flood, quiet, engine, _ = await _flood_in_every_slot(ctx, signup, engine_factory, poll_s)

    async def flooding() -> None:
        while True:
            engine.notify_submitted([flood])
            await asyncio.sleep(poll_s / 4)  # the flood's pace, not a synchronisation

    flooder_task = asyncio.create_task(flooding())
    try:
        [mine] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, quiet, 1)
        statuses = await wait_for_status(
            ctx.sessionmaker, [mine], [TaskStatus.running], timeout_s=10 * poll_s
        )
    finally:
        flooder_task.cancel()
    assert statuses == {mine: TaskStatus.running}


class _CountedWakeup(Wakeup):
    """Counts the wake-ups for anything (a slot freed, adoption), not those for submissions."""

    def __init__(self) -> None:
        super().__init__()
        self.for_anything = 0

    def set(self) -> None:
        self.for_anything += 1
        super().set()


async def test_an_attempt_frees_its_slot_once_so_it_wakes_the_dispatcher_once(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    # The slot frees with the outcome; the clean-up ending woke the dispatcher a second time,
    # for a round with nothing to fill (most of a drain's rounds, each a transaction).
    account = await signup()
    await set_plan(ctx.sessionmaker, account.organization_id, "big")
    ids = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id, 6)
    wakeup = _CountedWakeup()
    engine = engine_factory(
        FakeRuntime(), parallelism=2, reserved_slots=1, poll_s=30, wakeup=wakeup
    )
    await engine.start()
    await wait_for_status(ctx.sessionmaker, ids)
    await engine.stop(grace_s=5)  # every supervisor's clean-up done
    assert wakeup.for_anything == len(ids)


async def test_the_dispatcher_stops_when_a_wake_up_arrives_with_the_stop(
    engine_factory: EngineFactory,
) -> None:
    # Python 3.11's wait_for returned the wake-up and dropped the cancellation: the loop ran on
    # after its engine stopped and claimed later tests' tasks.
    dispatcher = engine_factory(FakeRuntime(HANG), poll_s=30).dispatcher
    dispatcher.wakeup = wakeup = _WatchedWakeup()
    running = asyncio.create_task(dispatcher.run())
    async with asyncio.timeout(5):
        await wakeup.idle.wait()
    wakeup.set()
    running.cancel()
    done, _ = await asyncio.wait({running}, timeout=2)
    assert running in done
    assert running.cancelled()


async def test_a_cancel_asked_during_the_run_wins_over_its_success_or_retry(
    ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    catalog = ctx.settings.catalog
    [succeeded] = await insert_tasks(ctx.sessionmaker, catalog, account.organization_id)
    [retryable] = await insert_tasks(
        ctx.sessionmaker, catalog, account.organization_id, type="flaky"
    )
    async with ctx.sessionmaker() as session, session.begin():
        claims = await DispatchRepository(session).claim(
            [succeeded, retryable], executor_id="x", now=utcnow(), lease=timedelta(30), running=True
        )
        # The cancel request lands while the sandboxes run; the claimed rows do not show it.
        await session.execute(
            update(Task)
            .where(Task.id.in_([succeeded, retryable]))
            .values(cancel_requested_at=utcnow())
        )
    ended = {
        succeeded: AttemptOutcome(AttemptStatus.succeeded, result={"done": True}),
        retryable: AttemptOutcome(AttemptStatus.failed, "exit 1", "exit_code", retryable=True),
    }

    for claim in claims:
        async with ctx.sessionmaker() as session, session.begin():
            status = await write_outcome(
                session,
                catalog,
                claim.task,
                attempt_number=claim.attempt_number,
                executor_id="x",
                outcome=ended[claim.task_id],
                now=utcnow(),
            )
        assert status is TaskStatus.canceled
        task = await task_row(ctx.sessionmaker, claim.task_id)
        assert (task.status, task.result, task.error_code) == (
            TaskStatus.canceled,
            None,
            "canceled" if claim.task_id == succeeded else "exit_code",
        )
        reservation = await reservation_of(ctx.sessionmaker, task.quota_reservation_id)
        assert reservation.status == ReservationStatus.settled  # it ran: counted


async def test_two_dispatchers_at_once_never_exceed_an_organizations_concurrency(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    account = await signup()  # the "small" plan: 2 at a time
    await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id, 10)
    first, second = (engine_factory(FakeRuntime(HANG), parallelism=8) for _ in range(2))

    if on_postgresql():
        # While one dispatcher holds the organization, another skips it instead of counting
        # what it has running before the first one's claim commits.
        async with ctx.sessionmaker() as session, session.begin():
            [held] = await DispatchRepository(session).queued_organizations(None, 8)
            assert str(held.id) == account.organization_id
            assert await second.dispatcher.dispatch_once() == []
    rounds = await asyncio.gather(
        *(engine.dispatcher.dispatch_once() for _ in range(5) for engine in (first, second))
    )

    assert sum(len(claims) for claims in rounds) == 2
    async with ctx.sessionmaker() as session:
        statuses = (await session.execute(select(Task.status))).scalars().all()
    assert Counter(statuses) == {TaskStatus.running: 2, TaskStatus.queued: 8}


async def test_deleting_an_organization_ends_its_queued_and_running_tasks(
    app: FastAPI, ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    owner = await signup()
    async with client_for(app) as client:
        created = await client.post(
            "/api/v1/organizations", json={"name": "Team"}, headers=owner.headers
        )
        organization_id = created.json()["id"]
        catalog = ctx.settings.catalog
        task_ids = await insert_tasks(ctx.sessionmaker, catalog, organization_id, 5, timeout_s=60)
        runtime, _, running = await two_hanging_tasks_running(ctx.sessionmaker, engine_factory)

        deleted = await client.delete(
            f"/api/v1/organizations/{organization_id}", headers=owner.headers
        )
        assert deleted.status_code == 204
        final = await wait_for_status(ctx.sessionmaker, task_ids, timeout_s=5.0)

    assert set(final.values()) == {TaskStatus.canceled}
    assert len(runtime.started) == 2, "nothing of a deleted organization starts"
    for task_id in task_ids:
        task = await task_row(ctx.sessionmaker, task_id)
        reservation = await reservation_of(ctx.sessionmaker, task.quota_reservation_id)
        ran = task_id in running
        assert reservation.status == (
            ReservationStatus.settled if ran else ReservationStatus.released
        )
        assert task.error_code == ("canceled" if ran else "organization_deleted")


async def test_a_submission_racing_the_deletion_of_its_organization_is_refused(
    app: FastAPI,
    ctx: AppContext,
    signup: SignUp,
    engine_factory: EngineFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = await signup()
    async with client_for(app) as client:
        created = await client.post(
            "/api/v1/organizations", json={"name": "Team"}, headers=owner.headers
        )
        organization_id = created.json()["id"]
        rate_limit = ctx.limiter.hit
        deleted: list[int] = []

        async def delete_then_limit(*args: Any, **kwargs: Any) -> Any:
            # The submission is authenticated; its organization's deletion commits now.
            monkeypatch.setattr(ctx.limiter, "hit", rate_limit)
            response = await client.delete(
                f"/api/v1/organizations/{organization_id}", headers=owner.headers
            )
            deleted.append(response.status_code)
            return await rate_limit(*args, **kwargs)

        monkeypatch.setattr(ctx.limiter, "hit", delete_then_limit)
        submitted = await client.post(
            "/api/v1/tasks",
            json={"type": "noop", "input": {}},
            headers={**owner.headers, "Saassy-Organization": organization_id},
        )
    assert deleted == [204]
    assert submitted.status_code == 404, submitted.text
    async with ctx.sessionmaker() as session:
        count = select(func.count()).where(Task.organization_id == uuid.UUID(organization_id))
        assert (await session.execute(count)).scalar_one() == 0


async def test_a_deleted_organizations_leftover_queue_is_never_dispatched(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    gone, other = await signup(), await signup()
    await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, gone.organization_id, 3)
    [mine] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, other.organization_id)
    async with ctx.sessionmaker() as session, session.begin():  # deleted before tasks were
        await session.execute(  # canceled with their organization
            update(Organization)
            .where(Organization.id == uuid.UUID(gone.organization_id))
            .values(deleted_at=utcnow())
        )
    engine = engine_factory(FakeRuntime(HANG), parallelism=4)
    claims = await engine.dispatcher.dispatch_once()
    assert [claim.task_id for claim in claims] == [mine]
