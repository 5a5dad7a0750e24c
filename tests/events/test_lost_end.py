"""A follower whose bus lost the task's end (a Redis outage) still ends: at its next quiet
spell it finds the end in the database."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import update

from saassy.config import Settings
from saassy.context import AppContext
from saassy.events.memory import MemoryEventBus
from saassy.models import Task, TaskStatus
from saassy.task_output.streams import follow_logs
from tests.conftest import SignUp
from tests.dispatch.support import insert_tasks

CATALOG = Path(__file__).parents[1] / "dispatch" / "catalog.toml"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(config=CATALOG)


async def test_a_stream_ends_when_the_database_says_the_task_ended(
    ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    bus = MemoryEventBus()  # nobody publishes on it: every event is "lost"
    stream = follow_logs(
        ctx.sessionmaker, bus, uuid.UUID(account.organization_id), task_id, keepalive_s=0.05
    )
    assert await anext(stream) == ": keepalive\n\n"  # subscribed, the task still queued
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Task).where(Task.id == task_id).values(status=TaskStatus.canceled)
        )
    rest = [line async for line in stream if line != ": keepalive\n\n"]
    assert rest == ['event: end\ndata: {"status":"canceled"}\n\n']
    await bus.close()
