"""An organization's schedules stop at the limit exactly, however many are created at once."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy import func, select

from saassy.audit.actors import NO_ORIGIN
from saassy.auth.principal import ActiveOrganization, Principal
from saassy.context import AppContext
from saassy.kit.db import is_sqlite
from saassy.kit.time import utcnow
from saassy.models import Role, Schedule
from saassy.schedules.errors import TooManySchedules
from saassy.schedules.schemas import ScheduleCreate
from saassy.schedules.service import MAX_SCHEDULES_PER_ORGANIZATION, create_schedule
from tests.schedules.conftest import SCHEDULES
from tests.tasks.conftest import Tenant

CONCURRENT = 20
SIMULTANEOUS = 5  # the connection pool's base size: that many can always be open at once


async def test_concurrent_creates_with_room_for_one_make_exactly_one(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()
    now = utcnow()
    async with ctx.sessionmaker() as session, session.begin():
        session.add_all(
            Schedule(
                organization_id=org.organization_id,
                name=f"s{i}",
                task_type="echo",
                input={"message": "hi"},
                cron="0 9 * * *",
                next_run_at=now,
                created_at=now,
                updated_at=now,
            )
            for i in range(MAX_SCHEDULES_PER_ORGANIZATION - 1)
        )
    principal = Principal(
        user_id=None,
        api_key_id=None,
        is_staff=False,
        roles={org.organization_id: Role.member},
        default_organization_id=org.organization_id,
    )
    active = ActiveOrganization(id=org.organization_id, role=Role.member, plan="free")
    body = ScheduleCreate(name="last", type="echo", input={"message": "hi"}, cron="0 9 * * *")

    # Hold the transactions open until several are in flight, so they truly race on PostgreSQL
    # (SQLite's BEGIN IMMEDIATE lets one writer in at a time: there the race is serialized).
    in_flight = 1 if is_sqlite(ctx.engine) else SIMULTANEOUS
    ready = 0
    go = asyncio.Event()

    async def attempt() -> None:
        nonlocal ready
        async with ctx.sessionmaker() as session, session.begin():
            await session.connection()
            ready += 1
            if ready >= in_flight:
                go.set()
            await go.wait()
            await create_schedule(session, ctx.settings, principal, active, body, origin=NO_ORIGIN)

    outcomes = await asyncio.gather(*(attempt() for _ in range(CONCURRENT)), return_exceptions=True)

    assert [o for o in outcomes if o is not None and not isinstance(o, TooManySchedules)] == []
    assert sum(o is None for o in outcomes) == 1
    async with ctx.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).where(Schedule.organization_id == org.organization_id)
        )
    assert count == MAX_SCHEDULES_PER_ORGANIZATION
    refused = await client.post(
        SCHEDULES,
        json={"name": "one more", "type": "echo", "input": {"message": "hi"}, "cron": "* * * * *"},
        headers=org.headers,
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "schedule_limit_reached")
