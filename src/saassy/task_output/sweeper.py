"""The storage sweep, at start-up and then hourly: retention, orphans, and storage metering.

- Retention: a task that ended more than its organization's plan's `retention_days` ago loses
  its artifacts (rows, then objects) and its logs; the task row and its usage stay.
- Orphans: an object whose key has no artifact row and whose attempt is not live (a crash
  between storing and writing the outcome, a partial write) is deleted.
- Metering: each organization's stored KiB is recorded once a day as GB-months, and its
  storage counter is recounted from the rows.

The clock is injected, so tests move it instead of waiting.
"""

from __future__ import annotations

import asyncio
import calendar
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.kit.background import BackgroundLoop
from saassy.kit.db_outage import log_failed_round
from saassy.kit.time import utcnow
from saassy.plans.catalog import Catalog
from saassy.plans.service import plan_with_overrides
from saassy.quotas.storage import give_back_storage, kib, storage_used_kib
from saassy.quotas.storage_repository import StorageRepository
from saassy.storage.base import ArtifactStorage
from saassy.storage.keys import EXPORTS_PREFIX, attempt_of_key
from saassy.task_output.kept_repository import KeptOutputRepository

log = structlog.get_logger(__name__)

SWEEP_EVERY_S = 3600.0
BATCH = 500
KIB_PER_GB = 1024 * 1024


@dataclass
class SweepReport:
    artifacts_expired: int = 0
    log_chunks_expired: int = 0
    orphans_removed: int = 0
    organizations_metered: int = 0


class StorageSweeper:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        catalog: Catalog,
        storage: ArtifactStorage,
        *,
        every_s: float = SWEEP_EVERY_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.catalog = catalog
        self.storage = storage
        self.every_s = every_s
        self.clock = clock
        self._loop = BackgroundLoop(self._run, "storage sweeper")

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self) -> None:
        while True:
            try:
                report = await self.sweep()
            except Exception as exc:  # the next round tries again; nothing is lost by waiting
                log_failed_round(log, "storage.sweep_failed", exc)
            else:
                log.info("storage.swept", **vars(report))
            await asyncio.sleep(self.every_s)

    async def sweep(self) -> SweepReport:
        """One round of all three, at the clock's time."""
        now = self.clock()
        report = SweepReport()
        await self.expire(now, report)
        await self.remove_orphans(report)
        await self.meter(now, report)
        return report

    async def expire(self, now: datetime, report: SweepReport) -> None:
        async with self.sessionmaker() as session:
            organizations = await KeptOutputRepository(session).organization_plans()
        for organization in organizations:
            plan = plan_with_overrides(
                self.catalog, organization.plan, organization.plan_overrides, organization.id
            )
            if plan.retention_days is None:
                continue
            cutoff = now - timedelta(days=plan.retention_days)
            report.artifacts_expired += await self._expire_artifacts(organization.id, cutoff)
            async with self.sessionmaker() as session, session.begin():
                repo = KeptOutputRepository(session)
                report.log_chunks_expired += await repo.delete_expired_logs(organization.id, cutoff)

    async def _expire_artifacts(self, organization_id: uuid.UUID, cutoff: datetime) -> int:
        """Rows first, then objects: a crash in between leaves orphans, which the next sweep
        removes, never a row whose download fails."""
        expired = 0
        while True:
            async with self.sessionmaker() as session, session.begin():
                repo = KeptOutputRepository(session)
                batch = await repo.expired_artifacts(organization_id, cutoff, BATCH)
                if not batch:
                    return expired
                await repo.delete_artifacts([artifact.id for artifact in batch])
                freed = sum(kib(artifact.size_bytes) for artifact in batch)
                await give_back_storage(session, organization_id, freed)
            for artifact in batch:
                await self.storage.delete(artifact.storage_key)
            expired += len(batch)

    async def remove_orphans(self, report: SweepReport) -> None:
        by_attempt: dict[tuple[uuid.UUID, int], list[str]] = defaultdict(list)
        for key in await self.storage.keys():
            if (attempt := attempt_of_key(key)) is not None:
                by_attempt[attempt].append(key)
            elif key.startswith(EXPORTS_PREFIX):
                continue  # data exports' archives: the export sweep removes them at expiry
            else:
                log.warning("storage.unknown_key", key=key)
        attempts = list(by_attempt)
        for start in range(0, len(attempts), BATCH):
            chunk = attempts[start : start + BATCH]
            keys = [key for attempt in chunk for key in by_attempt[attempt]]
            async with self.sessionmaker() as session:
                repo = KeptOutputRepository(session)
                live = await repo.live_attempts(chunk)
                kept: set[str] = set()
                for first in range(0, len(keys), BATCH):
                    kept |= await repo.keys_with_rows(keys[first : first + BATCH])
            for attempt in chunk:
                if attempt in live:  # its outcome, and its rows, may still come
                    continue
                for key in by_attempt[attempt]:
                    if key not in kept:
                        await self.storage.delete(key)
                        report.orphans_removed += 1

    async def meter(self, now: datetime, report: SweepReport) -> None:
        today = now.date()
        days_in_month = calendar.monthrange(today.year, today.month)[1]
        async with self.sessionmaker() as session:
            levels = await StorageRepository(session).levels()
        for organization_id, _counted in levels:
            async with self.sessionmaker() as session, session.begin():
                repo = StorageRepository(session)
                await repo.recount(organization_id)
                stored = await storage_used_kib(session, organization_id)
                if stored <= 0:
                    continue
                gb_months = round(stored / KIB_PER_GB / days_in_month, 9)
                await repo.record_day(organization_id, today, stored, gb_months, now)
                report.organizations_metered += 1
