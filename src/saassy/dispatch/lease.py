"""Leases and cancel requests of every attempt one process supervises, in two queries a tick.

One UPDATE renews the leases of the attempts this process's supervisors watch (never the
executor's other attempts: one whose supervisor died must let its lease run out, so adoption
takes it and its concurrency slot frees) and returns which are still its own; an attempt
missing from the answer was adopted elsewhere, so its supervisor is told to kill and write
nothing. One SELECT finds cancel requests. The cost is flat in the number of attempts,
which matters on SQLite where every transaction takes the write lock.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.dispatch.executor import AttemptRef
from saassy.dispatch.liveness import LastSeen
from saassy.dispatch.repository import DispatchRepository
from saassy.kit.background import BackgroundLoop
from saassy.kit.db_outage import OutageWatch, is_database_outage
from saassy.kit.time import utcnow

log = structlog.get_logger(__name__)


@dataclass
class AttemptWatch:
    """Set from outside the supervisor: cancel requested, or the lease was lost."""

    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    lost: asyncio.Event = field(default_factory=asyncio.Event)


class LeaseKeeper:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        executor_id: str,
        *,
        lease: timedelta,
        poll_s: float = 0.5,
        last_seen: LastSeen | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.executor_id = executor_id
        self.lease = lease
        self.poll_s = poll_s
        self.last_seen = last_seen
        self.watches: dict[uuid.UUID, tuple[AttemptRef, AttemptWatch]] = {}
        self._loop = BackgroundLoop(self._run, "lease keeper")

    def watch(self, ref: AttemptRef) -> AttemptWatch:
        watch = AttemptWatch()
        self.watches[ref.task_id] = (ref, watch)
        return watch

    def forget(self, ref: AttemptRef) -> None:
        current = self.watches.get(ref.task_id)
        if current is not None and current[0] == ref:
            del self.watches[ref.task_id]

    def kept(self) -> list[tuple[uuid.UUID, int]]:
        """(task id, number) of the attempts this keeper renews: none once it stopped (a
        supervisor still stuck then lets its lease run out, for adoption to take)."""
        if not self._loop.started:
            return []
        return [(task_id, ref.attempt_number) for task_id, (ref, _) in self.watches.items()]

    def start(self) -> None:
        self._stamp()
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self) -> None:
        renewed = time.monotonic()
        renew_every = self.lease.total_seconds() / 3
        outage = OutageWatch("lease keeper", first_wait_s=self.poll_s, most_wait_s=self.poll_s)
        while True:
            await asyncio.sleep(self.poll_s)
            self._stamp()
            if not self.watches:  # a lease taken from now on is fresh: its clock starts here
                renewed = time.monotonic()
                continue
            try:
                # Right after an outage too: a lease that ran out meanwhile is still ours
                # until an adoption takes it, so renew before one can.
                if outage.out or time.monotonic() - renewed >= renew_every:
                    after_outage = outage.out
                    await self.renew()
                    gap, renewed = time.monotonic() - renewed, time.monotonic()
                    if gap > 2 * renew_every and not after_outage:
                        # A stalled loop or a slow database: a longer gap loses the leases.
                        log.warning(
                            "lease renewal late",
                            seconds_since_last=round(gap, 2),
                            lease_s=self.lease.total_seconds(),
                            attempts=len(self.watches),
                        )
                await self.check_cancels()
                outage.succeeded()
            except Exception as exc:  # a lease that really runs out fences us on the next try
                if is_database_outage(exc):
                    outage.failed(exc)
                else:
                    log.exception("lease renewal failed")

    def _stamp(self) -> None:
        if self.last_seen is None:
            return
        try:
            self.last_seen.stamp(self.executor_id)
        except OSError:  # the wall time of a lost attempt is then bounded by its lease
            log.warning("executor liveness not stamped", exc_info=True)

    async def renew(self) -> None:
        watched = dict(self.watches)
        async with self.sessionmaker() as session, session.begin():
            held = await DispatchRepository(session).renew_leases(
                self.executor_id,
                [(task_id, ref.attempt_number) for task_id, (ref, _) in watched.items()],
                utcnow(),
                self.lease,
            )
        for task_id, (ref, watch) in watched.items():
            if (task_id, ref.attempt_number) not in held:
                watch.lost.set()

    async def check_cancels(self) -> None:
        watched = dict(self.watches)
        async with self.sessionmaker() as session, session.begin():
            canceled = await DispatchRepository(session).cancel_requested_among(list(watched))
        for task_id in canceled:
            watched[task_id][1].cancel.set()
