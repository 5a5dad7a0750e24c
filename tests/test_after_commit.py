"""A unit of work's effects reach the app after its commit and never after a rollback."""

from __future__ import annotations

import uuid

import pytest

from saassy.context import AppContext
from saassy.kit.after_commit import after_commit, drop_effects, take_effects
from saassy.tasks.effects import TaskQueued


async def test_effects_are_taken_once_in_order(
    ctx: AppContext,
) -> None:
    first, second = TaskQueued(uuid.uuid4(), uuid.uuid4()), TaskQueued(uuid.uuid4(), uuid.uuid4())
    async with ctx.sessionmaker() as session:
        after_commit(session, first)
        after_commit(session, second)
        assert take_effects(session) == [first, second]
        assert take_effects(session) == []


async def test_a_rollback_drops_the_effects(
    ctx: AppContext,
) -> None:
    async with ctx.sessionmaker() as session:
        after_commit(session, TaskQueued(uuid.uuid4(), uuid.uuid4()))
        await session.rollback()
        drop_effects(session)
        assert take_effects(session) == []


async def test_an_effect_without_a_reaction_is_a_bug(ctx: AppContext) -> None:
    with pytest.raises(TypeError, match="no reaction"):
        await ctx.after_commit([object()])
