"""Transactions racing for real: many at once, the first several held open together."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.context import AppContext
from saassy.kit.db import is_sqlite

T = TypeVar("T")

SIMULTANEOUS = 5  # the connection pool's base size: that many can always be open at once


async def race(
    ctx: AppContext, work: Callable[[AsyncSession], Awaitable[T]], times: int
) -> list[T | BaseException]:
    """Run `work` in `times` concurrent transactions and return each outcome (a result or the
    exception it raised), in order. The first SIMULTANEOUS transactions hold their connection
    open until all of them are in flight, so they truly race on PostgreSQL; SQLite's BEGIN
    IMMEDIATE lets one writer in at a time, so there the race is serialized by design."""
    in_flight = 1 if is_sqlite(ctx.engine) else SIMULTANEOUS
    ready = 0
    go = asyncio.Event()

    async def attempt() -> T:
        nonlocal ready
        async with ctx.sessionmaker() as session, session.begin():
            await session.connection()
            ready += 1
            if ready >= in_flight:
                go.set()
            await go.wait()
            return await work(session)

    return await asyncio.gather(*(attempt() for _ in range(times)), return_exceptions=True)


def admitted(outcomes: Sequence[object], refusal: type[BaseException]) -> int:
    """How many of the raced outcomes succeeded; any exception other than `refusal` fails."""
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert [o for o in failures if not isinstance(o, refusal)] == []
    return len(outcomes) - len(failures)
