"""A worker takes over an attempt only as the message's sender leased it, once, and only for the
task's own organization (the message's organization decides where events and artifacts go)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from saassy.context import AppContext
from saassy.dispatch.repository import DispatchRepository
from saassy.kit.time import utcnow
from tests.conftest import SignUp
from tests.dispatch.support import insert_tasks

SCHEDULER = "celery:scheduler-host:1:test"
WORKER = "celery:worker-host:2:test"
LEASE = timedelta(seconds=30)


async def take_over(ctx: AppContext, task_id: uuid.UUID, organization_id: uuid.UUID) -> bool:
    async with ctx.sessionmaker() as session, session.begin():
        return await DispatchRepository(session).take_over(
            task_id, organization_id, 1, SCHEDULER, WORKER, utcnow(), LEASE
        )


async def test_a_message_naming_another_organization_runs_nothing(
    ctx: AppContext, signup: SignUp
) -> None:
    owner, other = await signup(), await signup()
    (task_id,) = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, owner.organization_id, 1
    )
    async with ctx.sessionmaker() as session, session.begin():
        await DispatchRepository(session).claim(
            [task_id], executor_id=SCHEDULER, now=utcnow(), lease=LEASE
        )

    assert not await take_over(ctx, task_id, uuid.UUID(other.organization_id))
    assert await take_over(ctx, task_id, uuid.UUID(owner.organization_id))
    assert not await take_over(ctx, task_id, uuid.UUID(owner.organization_id))  # a duplicate
