"""The schedule loop: fires due schedules in `saassy dev`, `saassy api` and `saassy scheduler`
(safe to run in all of them at once: runs.py); the clock is injected for tests."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.config import Settings
from saassy.kit.after_commit import drop_effects, take_effects
from saassy.kit.background import BackgroundLoop
from saassy.kit.db_outage import is_database_outage, log_failed_round
from saassy.kit.time import utcnow
from saassy.schedules.repository import ScheduleRepository
from saassy.schedules.runs import fire_schedule
from saassy.tasks.catalog import TaskType
from saassy.tasks.service import ProgramRefusal

log = structlog.get_logger(__name__)

# The floor: a schedule created in another process is seen within this; one created here
# wakes the loop at once (ScheduleChanged).
SCHEDULE_POLL_S = 5.0
DUE_BATCH = 100
MIN_WAIT_S = 0.05

Committed = Callable[[list[object]], Awaitable[None]]


def anywhere(task_type: TaskType) -> str | None:
    """No program check here: the host that runs the attempt checks its own."""
    return None


class ScheduleLoop:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        program_refusal: ProgramRefusal = anywhere,
        on_committed: Committed | None = None,
        wakeup: asyncio.Event | None = None,
        clock: Callable[[], datetime] = utcnow,
        poll_s: float = SCHEDULE_POLL_S,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.program_refusal = program_refusal
        self.on_committed = on_committed
        self.wakeup = wakeup or asyncio.Event()
        self.clock = clock
        self.poll_s = poll_s
        self._loop = BackgroundLoop(self._run, "schedules")

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def fire_due(self) -> tuple[int, int]:
        """Act on the schedules due by now (up to a batch): (runs recorded, schedules due)."""
        now = self.clock()
        async with self.sessionmaker() as session:
            due = await ScheduleRepository(session).due_ids(now, DUE_BATCH)
        recorded = 0
        for schedule_id, organization_id in due:
            try:
                recorded += await self._fire(schedule_id, organization_id, now)
            except Exception as exc:
                if is_database_outage(exc):
                    raise
                # One schedule's failure must not hold up the others; it is tried again.
                log.exception("schedule.run_failed", schedule_id=str(schedule_id))
        return recorded, len(due)

    async def _fire(self, schedule_id: uuid.UUID, organization_id: uuid.UUID, now: datetime) -> int:
        async with self.sessionmaker() as session:
            try:
                async with session.begin():
                    run = await fire_schedule(
                        session,
                        self.settings,
                        schedule_id,
                        organization_id,
                        now,
                        program_refusal=self.program_refusal,
                    )
            except BaseException:
                drop_effects(session)
                raise
            effects = take_effects(session)
        if effects and self.on_committed is not None:
            await self.on_committed(effects)
        if run is None:
            return 0
        log.info(
            "schedule.run",
            schedule_id=str(schedule_id),
            due_at=run.due_at.isoformat(),
            outcome=run.outcome,
            missed=run.missed_due_times,
            refusal=run.refusal_code,
        )
        return 1

    async def _wait_s(self) -> float:
        async with self.sessionmaker() as session:
            due = await ScheduleRepository(session).earliest_due()
        if due is None:
            return self.poll_s
        return min(self.poll_s, max(MIN_WAIT_S, (due - self.clock()).total_seconds()))

    async def _run(self) -> None:
        while True:
            wait_s = self.poll_s
            try:
                recorded, due = await self.fire_due()
                # Due ones all held by other schedulers (or failing): do not spin on them.
                if recorded or not due:
                    wait_s = await self._wait_s()
            except Exception as exc:  # the next round tries again
                log_failed_round(log, "schedules.round_failed", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), wait_s)
            self.wakeup.clear()
