"""The export builder: claims queued exports, writes each archive to a file on disk, stores
it with the artifacts (local or S3), marks it ready and e-mails its link; and the sweep that
removes archives past their expiry.

Several may run at once (`saassy dev`/`saassy api` with the e-mail relay, and `saassy
scheduler`): a claim is a conditional update, so one builder wins each export. A builder that
dies leaves its claim; after `STALE_AFTER` another takes the export over, and the first one's
outcome, should it come back, no longer matches the claim and is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.config import Settings
from saassy.email.outbox import queue_email
from saassy.kit.background import BackgroundLoop
from saassy.kit.db_outage import log_failed_round
from saassy.kit.time import as_utc, utcnow
from saassy.models import DataExport, ExportStatus
from saassy.privacy.export_archive import ArchiveBuilder
from saassy.privacy.export_repository import DataExportRepository, ExportSourceRepository
from saassy.privacy.export_tables import ExportSubject
from saassy.storage.base import ArtifactStorage
from saassy.storage.keys import export_key

log = structlog.get_logger(__name__)

POLL_S = 30.0
STALE_AFTER = timedelta(hours=2)
SWEEP_BATCH = 100


@dataclass
class ExportRound:
    built: int = 0
    failed: int = 0
    expired: int = 0


def download_link(settings: Settings, export_id: uuid.UUID) -> str:
    """The dashboard page that downloads the archive (for the signed-in requester only)."""
    return f"{settings.base_url.rstrip('/')}/app/account/exports/{export_id}/download"


class ExportBuilder:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        storage: ArtifactStorage,
        *,
        wakeup: asyncio.Event | None = None,
        poll_s: float = POLL_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.storage = storage
        self.wakeup = wakeup or asyncio.Event()
        self.poll_s = poll_s
        self.clock = clock
        self._loop = BackgroundLoop(self._run, "export builder")

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self) -> None:
        while True:
            self.wakeup.clear()
            try:
                done = await self.run_once()
            except Exception as exc:  # the next round tries again; nothing is lost by waiting
                log_failed_round(log, "exports.round_failed", exc)
            else:
                if done.built or done.failed or done.expired:
                    log.info("exports.round", **vars(done))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), self.poll_s)

    async def run_once(self) -> ExportRound:
        """Remove what expired, then build every queued export."""
        done = ExportRound()
        done.expired = await self.sweep()
        while True:
            now = self.clock()
            async with self.sessionmaker() as session, session.begin():
                export = await DataExportRepository(session).claim_next(now, now - STALE_AFTER)
                if export is None:
                    return done
                session.expunge(export)
            if await self.build(export, now):
                done.built += 1
            else:
                done.failed += 1

    async def build(self, export: DataExport, started_at: datetime) -> bool:
        """Build, store and announce one claimed export; False if it failed."""
        workdir = self.settings.data_dir / "exports"
        workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            try:
                subject = await self._subject(export)
                path = Path(tmp) / "export.zip"
                builder = ArchiveBuilder(
                    self.sessionmaker, self.storage, subject, path, as_utc(started_at)
                )
                await builder.build(export.id)
                stored = await self.storage.put(export_key(export.id), path)
            except Exception as exc:
                log.exception("exports.build_failed", export_id=str(export.id))
                async with self.sessionmaker() as session, session.begin():
                    await DataExportRepository(session).finish(
                        export.id,
                        started_at,
                        status=ExportStatus.failed,
                        finished_at=self.clock(),
                        error=type(exc).__name__,
                    )
                return False
        finished = self.clock()
        expires_at = finished + timedelta(days=self.settings.export_expiry_days)
        async with self.sessionmaker() as session, session.begin():
            kept = await DataExportRepository(session).finish(
                export.id,
                started_at,
                status=ExportStatus.ready,
                storage_key=stored.key,
                sha256=stored.sha256,
                size_bytes=stored.size_bytes,
                finished_at=finished,
                expires_at=expires_at,
            )
            if kept:
                await self._announce(session, subject, export, expires_at)
        return kept

    async def _subject(self, export: DataExport) -> ExportSubject:
        async with self.sessionmaker() as session:
            source = ExportSourceRepository(session)
            email = await source.email_of(export.user_id)
            if export.organization_id is None:
                organizations = tuple(await source.owned_organizations(export.user_id))
            else:
                organizations = (export.organization_id,)
        if email is None:
            raise LookupError("the requester's account is gone")
        return ExportSubject(
            user_id=export.user_id,
            email=email,
            organization_ids=organizations,
            organization_export=export.organization_id is not None,
        )

    async def _announce(
        self,
        session: AsyncSession,
        subject: ExportSubject,
        export: DataExport,
        expires_at: datetime,
    ) -> None:
        name = self.settings.catalog.branding.name
        what = "your account" if subject.account_export else "your organization"
        body = (
            f"The export of {what}'s data you asked for is ready.\n\n"
            f"Download it (sign in as {subject.email} first):\n"
            f"{download_link(self.settings, export.id)}\n\n"
            f"The link works until {as_utc(expires_at):%Y-%m-%d %H:%M} UTC; then the archive "
            "is deleted and you can request a new export.\n"
            "The archive is a ZIP: manifest.json lists its tables and files.\n"
        )
        await queue_email(
            session,
            self.settings,
            to=subject.email,
            subject=f"Your {name} data export is ready",
            body=body,
        )

    async def sweep(self) -> int:
        """Remove the archives of exports past their expiry: the object first, then the row
        (a crash in between leaves the row, and the next sweep deletes again). The link answers
        410 from the expiry on, whether or not the sweep has run."""
        removed = 0
        while True:
            async with self.sessionmaker() as session:
                due = await DataExportRepository(session).due_to_expire(self.clock(), SWEEP_BATCH)
            for export in due:
                if export.storage_key:
                    await self.storage.delete(export.storage_key)
            async with self.sessionmaker() as session, session.begin():
                repo = DataExportRepository(session)
                for export in due:
                    await repo.mark_expired(export.id)
            removed += len(due)
            if len(due) < SWEEP_BATCH:
                return removed
