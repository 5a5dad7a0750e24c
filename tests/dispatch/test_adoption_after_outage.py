"""After the database comes back, adoption waits a whole lease: executors that lived through
the outage renew their leases first, so only orphans are adopted (and re-run)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.config.catalog import EXAMPLE_CONFIG, load_catalog
from saassy.dispatch.dispatcher import Dispatcher
from saassy.dispatch.executor import AttemptRef, Executor
from saassy.events.memory import MemoryEventBus
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.models import Task
from tests.own_services import OwnPostgreSQL

LEASE_S = 3.0


class AdoptionClock(Executor):
    """An executor that notes when it adopted: a query, as adoption's own are."""

    executor_id = "test:host:1:clock"
    parallelism = 0  # claims nothing: the rounds only adopt

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self.adoptions: list[float] = []

    @property
    def active(self) -> int:
        return 0

    async def start(self) -> None:
        return None

    async def submit(self, attempt: AttemptRef, task: Task | None = None) -> None:
        raise AssertionError("nothing is claimed")

    async def cancel(self, task_id: uuid.UUID) -> bool:
        return False

    async def heartbeat(self) -> None:
        return None

    async def adopt(self) -> int:
        async with self.sessionmaker() as session:
            await session.execute(text("SELECT 1"))  # raises while the database is away
        self.adoptions.append(time.monotonic())
        return 0

    async def stop(self, grace_s: float = 10.0) -> None:
        return None


async def test_adoption_waits_a_lease_after_a_long_outage_ends(
    own_postgresql: OwnPostgreSQL,
) -> None:
    engine = create_engine(own_postgresql.create_database("adoption"))
    sessionmaker = create_sessionmaker(engine)
    executor = AdoptionClock(sessionmaker)
    dispatcher = Dispatcher(
        sessionmaker,
        load_catalog(EXAMPLE_CONFIG),  # no test database: it runs on its own PostgreSQL
        executor,
        MemoryEventBus(),
        lease=timedelta(seconds=LEASE_S),
        poll_s=0.05,
        adopt_every_s=0.5,
    )
    dispatcher.start()
    try:
        await asyncio.sleep(1)
        assert executor.adoptions  # adopting every half second while the database is there
        own_postgresql.stop()
        # Longer than the dispatcher's longest wait between tries (5 s) and than the lease: a
        # hold counted from its last failed try would end before the database is back.
        await asyncio.sleep(7)
        own_postgresql.start()
        back = time.monotonic()
        await asyncio.sleep(LEASE_S + 1.5)
    finally:
        await dispatcher.stop()
        await engine.dispose()

    after = [at - back for at in executor.adoptions if at > back]
    assert after, "adoption never resumed"
    assert after[0] >= LEASE_S - 0.1, after
