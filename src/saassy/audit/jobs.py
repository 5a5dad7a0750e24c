"""Retention: entries older than SAASSY_AUDIT_RETENTION_DAYS are deleted, oldest first, in
batches (one short transaction each). Runs where the other sweeps run (the embedded engine of
`saassy dev`/`saassy api`, and `saassy scheduler`); several at once only split the work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.audit.service import prune
from saassy.kit.background import BackgroundLoop
from saassy.kit.db_outage import log_failed_round
from saassy.kit.time import utcnow

log = structlog.get_logger(__name__)

PRUNE_EVERY_S = 3600.0
BATCH = 1000


class AuditPruner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        retention_days: int,
        *,
        every_s: float = PRUNE_EVERY_S,
        batch: int = BATCH,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.retention = timedelta(days=retention_days)
        self.every_s = every_s
        self.batch = batch
        self.clock = clock
        self._loop = BackgroundLoop(self._run, "audit pruner")

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def prune(self) -> int:
        """Delete every entry past retention; how many."""
        before = self.clock() - self.retention
        total = 0
        while True:
            async with self.sessionmaker() as session, session.begin():
                deleted = await prune(session, before, self.batch)
            total += deleted
            if deleted < self.batch:
                return total

    async def _run(self) -> None:
        while True:
            try:
                deleted = await self.prune()
            except Exception as exc:  # the next round tries again; nothing is lost by waiting
                log_failed_round(log, "audit.prune_failed", exc)
            else:
                if deleted:
                    log.info("audit.pruned", entries=deleted)
            await asyncio.sleep(self.every_s)
