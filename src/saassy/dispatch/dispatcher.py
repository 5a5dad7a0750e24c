"""The dispatcher: claims due queued tasks for an executor, fairly across organizations.

Each round walks the organizations that have queued tasks in id order, resuming after the last
one served, and claims one task per organization per turn (priority, then FIFO, inside one),
skipping organizations at their plan's concurrency, until the executor is full or a whole turn
claims nothing. Finding the next organization and its next task are index seeks, so a round's
cost grows with the organizations served, not with the queue's depth.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.dispatch.executor import AttemptRef, Executor
from saassy.dispatch.repository import Claimed, DispatchRepository
from saassy.events.bus import EventBus, publish_status
from saassy.kit.background import BackgroundLoop
from saassy.kit.time import utcnow
from saassy.models import TaskStatus
from saassy.plans.catalog import Catalog
from saassy.plans.service import effective_plan

log = structlog.get_logger(__name__)


class Dispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        catalog: Catalog,
        executor: Executor,
        events: EventBus,
        *,
        wakeup: asyncio.Event | None = None,
        lease: timedelta = timedelta(seconds=15),
        poll_s: float = 0.5,
        adopt_every_s: float = 5.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.catalog = catalog
        self.executor = executor
        self.events = events
        self.wakeup = wakeup or asyncio.Event()
        self.lease = lease
        self.poll_s = poll_s
        self.adopt_every_s = adopt_every_s
        self._cursor: uuid.UUID | None = None
        self._loop = BackgroundLoop(self.run, "dispatcher")

    async def dispatch_once(self) -> list[Claimed]:
        """Claim what the executor has room for and hand it over; returns the claims."""
        free = self.executor.free_slots
        if free <= 0:
            return []
        async with self.sessionmaker() as session, session.begin():
            claims = await self._claim_round(DispatchRepository(session), free)
        for claim in claims:
            ref = AttemptRef(
                task_id=claim.task_id,
                organization_id=claim.organization_id,
                attempt_number=claim.attempt_number,
                executor_id=self.executor.executor_id,
            )
            await self.executor.submit(ref)
            await publish_status(
                self.events,
                claim.organization_id,
                claim.task_id,
                TaskStatus.dispatched,
                claim.attempt_number,
            )
        return claims

    async def _claim_round(self, repo: DispatchRepository, free: int) -> list[Claimed]:
        claims: list[Claimed] = []
        room: dict[uuid.UUID, int] = {}  # per organization, learnt once per round
        idle: set[uuid.UUID] = set()  # served since the last claim without getting one
        now = utcnow()
        while len(claims) < free:
            organization_id = await repo.next_queued_organization(self._cursor)
            if organization_id is None:
                if self._cursor is None:
                    break  # nothing queued at all
                self._cursor = None
                continue
            self._cursor = organization_id
            if organization_id in idle:
                break  # a whole turn without a claim
            if organization_id not in room:
                room[organization_id] = await self._room(repo, organization_id)
            got: list[Claimed] = []
            if room[organization_id] > 0:
                got = await repo.claim(
                    organization_id,
                    1,
                    executor_id=self.executor.executor_id,
                    now=now,
                    lease=self.lease,
                )
            if got:
                room[organization_id] -= len(got)
                claims += got
                idle.clear()
            else:
                room[organization_id] = 0
                idle.add(organization_id)
        return claims

    async def _room(self, repo: DispatchRepository, organization_id: uuid.UUID) -> int:
        organization = await repo.lock_organization(organization_id)
        if organization is None:
            return 0  # deleted, or another dispatcher is claiming for it right now
        limit = effective_plan(self.catalog, organization).max_concurrent_tasks
        return max(0, limit - await repo.active_count(organization_id))

    async def run(self) -> None:
        """Dispatch until cancelled: on every wake-up, else every `poll_s`; adopt now and then."""
        adopted_at = 0.0
        while True:
            try:
                if time.monotonic() - adopted_at >= self.adopt_every_s:
                    adopted_at = time.monotonic()
                    if await self.executor.adopt():
                        self.wakeup.set()
                self.wakeup.clear()
                claims = await self.dispatch_once()
                await self.executor.heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("dispatch round failed")
                claims = []
            if claims and self.executor.free_slots > 0:
                continue  # more may be due right away
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), self.poll_s)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
