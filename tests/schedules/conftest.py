"""A catalog with a schema'd task type and a one-task plan, tenants with API keys, a simulated
clock, and schedulers on their own engines (as separate processes would be)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.models import ScheduleRun, Task
from saassy.schedules.jobs import ScheduleLoop
from tests.tasks.conftest import TenantKey
from tests.tasks.conftest import tenant as tenant  # the fixture, re-exported for this package

CATALOG = """
default_plan = "free"

[plans.free]
name = "Free"
tasks_per_month = 100
max_task_duration_s = 60
resources = { memory_mb = 512, cpus = 0.5 }
api_rate_limit = "1000/minute"

[plans.tiny]
name = "Tiny"
tasks_per_month = 1
max_task_duration_s = 60
resources = { memory_mb = 512, cpus = 0.5 }
api_rate_limit = "1000/minute"

[task_types.echo]
title = "Echo"
command = ["/bin/true"]
default_timeout_s = 10
max_timeout_s = 600
input_schema = { type = "object", required = ["message"], additionalProperties = false, \
properties = { message = { type = "string", minLength = 1 } } }
"""

SCHEDULES = "/api/v1/schedules"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    path = tmp_path / "saassy.toml"
    path.write_text(CATALOG, encoding="utf-8")
    return settings_factory(config=path)


class SimulatedClock:
    """The schedulers' `now`, moved by the test: no waiting for real minutes."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(datetime.now(UTC))


Schedulers = Callable[[int], Coroutine[Any, Any, list[ScheduleLoop]]]


@pytest.fixture
async def schedulers(
    settings: Settings, clock: SimulatedClock
) -> AsyncIterator[Callable[[int], Coroutine[Any, Any, list[ScheduleLoop]]]]:
    """`count` schedule loops, each with its own engine, on the simulated clock."""
    engines = []

    async def make(count: int) -> list[ScheduleLoop]:
        loops = []
        for _ in range(count):
            engine = create_engine(settings.resolved_database_url)
            engines.append(engine)
            loops.append(ScheduleLoop(create_sessionmaker(engine), settings, clock=clock))
        return loops

    yield make
    for engine in engines:
        await engine.dispose()


async def create_schedule(
    client: httpx.AsyncClient, org: TenantKey, **fields: Any
) -> dict[str, Any]:
    body = {"name": "Nightly", "type": "echo", "input": {"message": "hi"}, **fields}
    if "cron" not in fields and "interval_s" not in fields:
        body["cron"] = "* * * * *"
    response = await client.post(SCHEDULES, json=body, headers=org.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def next_run(schedule: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(schedule["next_runs"][0])


async def tasks_of(ctx: AppContext, organization_id: uuid.UUID) -> list[Task]:
    async with ctx.sessionmaker() as session:
        rows = await session.scalars(
            select(Task).where(Task.organization_id == organization_id).order_by(Task.created_at)
        )
        return list(rows.all())


async def runs_of(ctx: AppContext, schedule_id: str) -> list[ScheduleRun]:
    async with ctx.sessionmaker() as session:
        rows = await session.scalars(
            select(ScheduleRun)
            .where(ScheduleRun.schedule_id == uuid.UUID(schedule_id))
            .order_by(ScheduleRun.due_at)
        )
        return list(rows.all())


async def run_count(ctx: AppContext) -> int:
    async with ctx.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(ScheduleRun)) or 0)
