"""Schedules fire on the simulated clock: exactly one task per due time with several
schedulers, missed due times made up once or skipped, refusals recorded."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from saassy.context import AppContext
from saassy.dispatch.scheduler import dispatch_queued
from saassy.events.memory import MemoryEventBus
from saassy.models import RunOutcome, Schedule, TaskStatus
from saassy.tasks.effects import TaskQueued
from tests.schedules.conftest import (
    SCHEDULES,
    Schedulers,
    SimulatedClock,
    create_schedule,
    next_run,
    runs_of,
    tasks_of,
)
from tests.tasks.conftest import Tenant


async def test_two_schedulers_for_five_minutes_queue_exactly_five_tasks(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    clock: SimulatedClock,
    schedulers: Schedulers,
) -> None:
    org = await tenant()
    schedule = await create_schedule(client, org, cron="* * * * *")
    first = next_run(schedule)
    first_scheduler, second_scheduler = await schedulers(2)
    # Every 10 s from just before the first due time to just before the sixth: five due times.
    clock.set(first - timedelta(seconds=5))
    for _ in range(30):
        await asyncio.gather(first_scheduler.fire_due(), second_scheduler.fire_due())
        clock.advance(10)

    tasks = await tasks_of(ctx, org.organization_id)
    assert len(tasks) == 5
    assert {task.status for task in tasks} == {TaskStatus.queued}
    assert {task.input["message"] for task in tasks} == {"hi"}
    runs = await runs_of(ctx, schedule["id"])
    assert [run.due_at for run in runs] == [first + timedelta(minutes=i) for i in range(5)]
    assert {run.outcome for run in runs} == {RunOutcome.queued}
    assert {run.task_id for run in runs} == {task.id for task in tasks}
    assert all(run.missed_due_times == 0 for run in runs)


async def test_a_scheduler_acting_on_a_stale_read_submits_nothing_twice(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    clock: SimulatedClock,
    schedulers: Schedulers,
) -> None:
    org = await tenant()
    schedule = await create_schedule(client, org)
    first = next_run(schedule)
    (scheduler,) = await schedulers(1)
    clock.set(first + timedelta(seconds=1))
    assert await scheduler.fire_due() == (1, 1)
    # As a second scheduler sees it when it read the row before the first one committed (no
    # lock held it): due again at the same time. The unique key on (schedule, due time) holds.
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Schedule)
            .where(Schedule.id == uuid.UUID(schedule["id"]))
            .values(next_run_at=first)
        )
    assert await scheduler.fire_due() == (0, 1)
    assert len(await tasks_of(ctx, org.organization_id)) == 1
    # ... and the schedule moved past that due time rather than trying it for ever.
    response = await client.get(f"{SCHEDULES}/{schedule['id']}", headers=org.headers)
    assert next_run(response.json()) == first + timedelta(minutes=1)


async def test_due_times_missed_while_down_are_made_up_by_one_run(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    clock: SimulatedClock,
    schedulers: Schedulers,
) -> None:
    org = await tenant()
    schedule = await create_schedule(client, org, catch_up="once")
    first = next_run(schedule)
    (scheduler,) = await schedulers(1)
    clock.set(first + timedelta(seconds=2))
    await scheduler.fire_due()
    # Down from just after that run until 45 s past the fourth due time: three were missed.
    clock.set(first + timedelta(minutes=3, seconds=45))
    assert await scheduler.fire_due() == (1, 1)
    assert await scheduler.fire_due() == (0, 0)

    tasks = await tasks_of(ctx, org.organization_id)
    assert len(tasks) == 2
    runs = await runs_of(ctx, schedule["id"])
    assert [(run.due_at, run.outcome, run.missed_due_times) for run in runs] == [
        (first, RunOutcome.queued, 0),
        (first + timedelta(minutes=3), RunOutcome.queued, 2),
    ]
    response = await client.get(f"{SCHEDULES}/{schedule['id']}", headers=org.headers)
    assert next_run(response.json()) == first + timedelta(minutes=4)


async def test_due_times_missed_while_down_are_skipped_when_the_schedule_says_so(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    clock: SimulatedClock,
    schedulers: Schedulers,
) -> None:
    org = await tenant()
    schedule = await create_schedule(client, org, catch_up="skip")
    first = next_run(schedule)
    (scheduler,) = await schedulers(1)
    clock.set(first + timedelta(seconds=2))
    await scheduler.fire_due()
    clock.set(first + timedelta(minutes=3, seconds=45))
    await scheduler.fire_due()
    assert len(await tasks_of(ctx, org.organization_id)) == 1  # none for the three missed

    # The next due time, reached on time, runs as usual.
    clock.set(first + timedelta(minutes=4, seconds=1))
    await scheduler.fire_due()
    assert len(await tasks_of(ctx, org.organization_id)) == 2
    runs = await runs_of(ctx, schedule["id"])
    assert [(run.due_at, run.outcome, run.missed_due_times) for run in runs] == [
        (first, RunOutcome.queued, 0),
        (first + timedelta(minutes=3), RunOutcome.skipped, 2),
        (first + timedelta(minutes=4), RunOutcome.queued, 0),
    ]
    history = await client.get(f"{SCHEDULES}/{schedule['id']}/runs", headers=org.headers)
    assert [run["outcome"] for run in history.json()["items"]] == ["queued", "skipped", "queued"]


async def test_a_quota_refusal_is_recorded_on_the_schedule_and_its_history(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    clock: SimulatedClock,
    schedulers: Schedulers,
) -> None:
    org = await tenant(plan="tiny")  # one task a month
    schedule = await create_schedule(client, org)
    first = next_run(schedule)
    (scheduler,) = await schedulers(1)
    for minute in range(2):
        clock.set(first + timedelta(minutes=minute, seconds=1))
        await scheduler.fire_due()

    tasks = await tasks_of(ctx, org.organization_id)
    assert len(tasks) == 1
    response = await client.get(f"{SCHEDULES}/{schedule['id']}", headers=org.headers)
    body = response.json()
    assert body["last_outcome"] == "refused"
    assert body["last_task_id"] == str(tasks[0].id)
    refusal = body["last_refusal"]
    assert refusal["code"] == "quota_exceeded"
    assert "tasks" in refusal["message"]
    assert datetime.fromisoformat(refusal["at"]) == clock.now
    history = await client.get(f"{SCHEDULES}/{schedule['id']}/runs", headers=org.headers)
    newest, oldest = history.json()["items"]
    assert (oldest["outcome"], oldest["task_id"]) == ("queued", str(tasks[0].id))
    assert (newest["outcome"], newest["task_id"]) == ("refused", None)
    assert newest["refusal_code"] == "quota_exceeded"
    assert newest["due_at"].startswith((first + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"))
    # The refusal moved the schedule on: it is tried again at its next due time, not every tick.
    assert next_run(body) == first + timedelta(minutes=2)


async def test_a_paused_schedule_does_not_fire_and_resumes_without_making_up(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    clock: SimulatedClock,
    schedulers: Schedulers,
) -> None:
    org = await tenant()
    schedule = await create_schedule(client, org, interval_s=60)
    first = next_run(schedule)
    (scheduler,) = await schedulers(1)
    paused = await client.post(f"{SCHEDULES}/{schedule['id']}/pause", headers=org.headers)
    assert paused.json()["paused"] is True
    assert paused.json()["next_runs"] == []
    clock.set(first + timedelta(minutes=5))
    assert await scheduler.fire_due() == (0, 0)
    resumed = await client.post(f"{SCHEDULES}/{schedule['id']}/resume", headers=org.headers)
    assert resumed.json()["paused"] is False
    assert len(resumed.json()["next_runs"]) == 5
    assert await tasks_of(ctx, org.organization_id) == []


async def test_the_loop_fires_when_woken(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    clock: SimulatedClock,
    schedulers: Schedulers,
) -> None:
    org = await tenant()
    schedule = await create_schedule(client, org)
    (scheduler,) = await schedulers(1)
    clock.set(next_run(schedule) + timedelta(seconds=1))
    scheduler.start()
    try:
        for _ in range(200):
            if await tasks_of(ctx, org.organization_id):
                break
            await asyncio.sleep(0.01)
    finally:
        await scheduler.stop()
    assert len(await tasks_of(ctx, org.organization_id)) == 1


async def test_saassy_schedulers_run_wakes_its_dispatcher_and_tells_viewers() -> None:
    """`saassy scheduler`'s reaction to a schedule's committed run."""
    events = MemoryEventBus()
    wakeup = asyncio.Event()
    organization_id, task_id = uuid.uuid4(), uuid.uuid4()
    async with events.subscribe(organization_id) as viewer:
        await dispatch_queued(events, wakeup)([TaskQueued(organization_id, task_id)])
        event = await viewer.get(timeout_s=1)
    assert wakeup.is_set()
    assert event is not None
    assert (event.kind, event.task_id, event.data["status"]) == ("task.status", task_id, "queued")


async def test_the_history_keeps_the_newest_runs(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    clock: SimulatedClock,
    schedulers: Schedulers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("saassy.schedules.runs.RUNS_KEPT", 3)
    org = await tenant()
    schedule = await create_schedule(client, org)
    first = next_run(schedule)
    (scheduler,) = await schedulers(1)
    for minute in range(5):
        clock.set(first + timedelta(minutes=minute, seconds=1))
        await scheduler.fire_due()
    runs = await runs_of(ctx, schedule["id"])
    assert [run.due_at for run in runs] == [first + timedelta(minutes=m) for m in (2, 3, 4)]
    assert len(await tasks_of(ctx, org.organization_id)) == 5  # the tasks stay
