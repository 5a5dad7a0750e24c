"""An organization's schedules stop at the limit exactly, however many are created at once."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from saassy.audit.actors import NO_ORIGIN
from saassy.auth.principal import ActiveOrganization, Principal
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import Role, Schedule
from saassy.schedules.errors import TooManySchedules
from saassy.schedules.schemas import ScheduleCreate
from saassy.schedules.service import MAX_SCHEDULES_PER_ORGANIZATION, create_schedule
from tests.concurrency import admitted, race
from tests.schedules.conftest import SCHEDULES
from tests.tasks.conftest import Tenant

CONCURRENT = 20


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

    outcomes = await race(
        ctx,
        lambda session: create_schedule(
            session, ctx.settings, principal, active, body, origin=NO_ORIGIN
        ),
        CONCURRENT,
    )
    assert admitted(outcomes, TooManySchedules) == 1
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
