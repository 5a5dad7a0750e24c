"""Deleting an account ends its organizations' running and queued tasks through the engine's
cancel path; the eraser removes them only once they have ended."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import FastAPI
from sqlalchemy import func, select

from saassy.context import AppContext
from saassy.models import Task, TaskStatus, User
from tests.conftest import SignUp, client_for
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import insert_tasks, two_hanging_tasks_running, wait_for_status


async def test_running_tasks_end_before_the_account_is_erased(
    app: FastAPI, ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    owner = await signup()
    catalog = ctx.settings.catalog
    task_ids = await insert_tasks(ctx.sessionmaker, catalog, owner.organization_id, 4, timeout_s=60)
    runtime, engine, _ = await two_hanging_tasks_running(ctx.sessionmaker, engine_factory)

    async with client_for(app) as client:
        accepted = await client.post(
            "/api/v1/account/deletion", json={"password": owner.password}, headers=owner.headers
        )
    assert accepted.status_code == 202, accepted.text
    final = await wait_for_status(ctx.sessionmaker, task_ids, timeout_s=5.0)
    assert set(final.values()) == {TaskStatus.canceled}
    assert len(runtime.started) == 2, "nothing of a deleted account starts"

    eraser = engine.account_eraser
    assert eraser is not None
    async with asyncio.timeout(10):
        while not await eraser.erase_due():  # noqa: ASYNC110 - the eraser polls, no event
            await asyncio.sleep(0.05)  # an attempt's outcome may still be on its way
    async with ctx.sessionmaker() as session:
        assert await session.get(User, uuid.UUID(owner.user_id)) is None
        assert await session.scalar(select(func.count()).select_from(Task)) == 0
