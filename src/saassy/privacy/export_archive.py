"""Writing an export's ZIP: one table or file at a time, straight to a file on disk, each
page of rows read in its own short session, so neither memory nor a transaction grows with
the size of the data. Compressing and writing happen in a worker thread, a page or a chunk at
a time, so the builder never holds up the API process it may share.

Layout (version `LAYOUT_VERSION`, docs/privacy.md):
    manifest.json                     who, when, every table with its row count, every file
    tables/<table>.json               a JSON array of the table's rows (one object per row)
    files/tasks/<task>/logs/attempt-<n>.<stream>.log
    files/tasks/<task>/artifacts/<attempt>/<path>
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import IO, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.models import Base
from saassy.privacy.export_repository import ExportSourceRepository
from saassy.privacy.export_tables import (
    LAYOUT_VERSION,
    TABLES,
    Excluded,
    Exported,
    ExportSubject,
    exported_tables,
)
from saassy.storage.base import ArtifactStorage

PAGE = 500


@dataclass(frozen=True)
class ArchivedFile:
    path: str
    size_bytes: int
    sha256: str


@dataclass
class Manifest:
    tables: list[dict[str, Any]] = field(default_factory=list)
    files: list[ArchivedFile] = field(default_factory=list)


class _Hashing:
    """Counts and hashes what is written through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.size = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.raw.write(data)
        self.size += len(data)
        self.digest.update(data)

    async def put(self, data: bytes) -> None:
        """Write off the event loop (deflating a page of rows or a chunk takes CPU time)."""
        await asyncio.to_thread(self.write, data)


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not exported")


def encode_row(row: dict[str, Any]) -> bytes:
    return json.dumps(row, default=_plain, ensure_ascii=False, sort_keys=True).encode()


def safe_member(path: str) -> str:
    """An archive path with no part an unzip could climb out with: on Windows too, where a
    backslash (an ordinary character in a Linux file name) separates folders and `C:` is a drive."""
    posix = path.replace("\\", "/")
    parts = [
        p for p in PurePosixPath(posix).parts if p not in ("/", "", ".", "..") and ":" not in p
    ]
    return "/".join(parts) or "unnamed"


class ArchiveWriter:
    def __init__(self, path: Path, generated_at: datetime) -> None:
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)
        self._date_time = generated_at.timetuple()[:6]  # each entry's time (the format's own)
        self.manifest = Manifest()

    @contextmanager
    def entry(self, name: str) -> Iterator[_Hashing]:
        info = zipfile.ZipInfo(name, date_time=self._date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        with self._zip.open(info, "w", force_zip64=True) as raw:
            writer = _Hashing(raw)
            yield writer
        self.manifest.files.append(ArchivedFile(name, writer.size, writer.digest.hexdigest()))

    def close(self) -> None:
        self._zip.close()


class ArchiveBuilder:
    """Builds one export's archive at `path`."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        storage: ArtifactStorage,
        subject: ExportSubject,
        path: Path,
        generated_at: datetime,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.storage = storage
        self.subject = subject
        self.generated_at = generated_at
        self.writer = ArchiveWriter(path, generated_at)

    async def build(self, export_id: uuid.UUID) -> None:
        try:
            for name, rule in exported_tables():
                if not rule.files_only:
                    await self._table(name, rule)
            await self._logs()
            await self._artifacts()
            self._manifest(self.generated_at, export_id)
        finally:
            self.writer.close()

    async def _table(self, name: str, rule: Exported) -> None:
        table = Base.metadata.tables[name]
        omitted = rule.omit | (
            rule.omit_for_organization if self.subject.organization_export else frozenset()
        )
        columns = [column.name for column in table.columns if column.name not in omitted]
        where = rule.where(table, self.subject)
        rows = 0
        path = f"tables/{name}.json"
        with self.writer.entry(path) as out:
            out.write(b"[")
            after: uuid.UUID | None = None
            while True:
                async with self.sessionmaker() as session:
                    page = await ExportSourceRepository(session).rows_after(
                        table, columns, where, after, PAGE
                    )
                encoded = []
                for row in page:
                    if rule.redact is not None:
                        row = rule.redact(row, self.subject)
                    encoded.append(encode_row(row))
                if encoded:
                    await out.put((b",\n" if rows else b"\n") + b",\n".join(encoded))
                    rows += len(encoded)
                if len(page) < PAGE:
                    break
                after = page[-1]["id"]
            out.write(b"\n]\n" if rows else b"]\n")
        self.writer.manifest.tables.append(
            {"name": name, "file": path, "rows": rows, "columns": columns}
        )

    async def _logs(self) -> None:
        async with self.sessionmaker() as session:
            streams = await ExportSourceRepository(session).log_streams(
                self.subject.organization_ids
            )
        for task_id, attempt, stream in streams:
            path = f"files/tasks/{task_id}/logs/attempt-{attempt}.{safe_member(stream)}.log"
            with self.writer.entry(path) as out:
                after = -1
                while True:
                    async with self.sessionmaker() as session:
                        chunks = await ExportSourceRepository(session).log_chunks_after(
                            task_id, attempt, stream, after, PAGE
                        )
                    if chunks:
                        await out.put("".join(data for _, data in chunks).encode())
                        after = chunks[-1][0]
                    if len(chunks) < PAGE:
                        break

    async def _artifacts(self) -> None:
        after: uuid.UUID | None = None
        while True:
            async with self.sessionmaker() as session:
                page = await ExportSourceRepository(session).artifacts_after(
                    self.subject.organization_ids, after, PAGE
                )
            for artifact in page:
                path = (
                    f"files/tasks/{artifact.task_id}/artifacts/{artifact.attempt_number}/"
                    f"{safe_member(artifact.path)}"
                )
                if not await self.storage.exists(artifact.storage_key):
                    continue  # removed by retention since: its row is in tables/artifacts.json
                with self.writer.entry(path) as out:
                    async for chunk in self.storage.open(artifact.storage_key):
                        await out.put(chunk)
            if len(page) < PAGE:
                return
            after = page[-1].id

    def _manifest(self, generated_at: datetime, export_id: uuid.UUID) -> None:
        subject = self.subject
        excluded = {
            name: rule.reason for name, rule in TABLES.items() if isinstance(rule, Excluded)
        }
        manifest = {
            "layout_version": LAYOUT_VERSION,
            "export_id": str(export_id),
            "generated_at": generated_at.isoformat(),
            "kind": "organization" if subject.organization_export else "account",
            "requested_by": {"user_id": str(subject.user_id), "email": subject.email},
            "organization_ids": [str(o) for o in subject.organization_ids],
            "tables": self.writer.manifest.tables,
            "excluded_tables": excluded,
            "files": [
                {"path": f.path, "size_bytes": f.size_bytes, "sha256": f.sha256}
                for f in self.writer.manifest.files
            ],
        }
        with self.writer.entry("manifest.json") as out:
            out.write(json.dumps(manifest, indent=2, ensure_ascii=False).encode())
