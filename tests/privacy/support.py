"""Two customers whose every kind of data carries a canary string, and reading an export."""

from __future__ import annotations

import hashlib
import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import (
    Artifact,
    Schedule,
    Task,
    TaskAttempt,
    TaskLogChunk,
    TaskStatus,
    UsageRecord,
    WebhookEndpoint,
)
from saassy.privacy.export_jobs import ExportBuilder, ExportRound
from saassy.storage.keys import artifact_key
from tests.conftest import Account, SignUp


@dataclass
class Customer:
    """A signed-up user with a team organization they own, full of data marked `canary`."""

    account: Account
    canary: str  # e.g. CANARY_A: every string this customer's data holds contains it
    organization_id: str
    task_id: str
    secret_value: str
    api_key: str

    @property
    def headers(self) -> dict[str, str]:
        return self.account.headers

    @property
    def in_team(self) -> dict[str, str]:
        return {**self.headers, "Saassy-Organization": self.organization_id}


async def customer(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, canary: str, tmp: Path
) -> Customer:
    account = await signup(f"{canary.lower()}@example.com")
    made = await client.post(
        "/api/v1/organizations", json={"name": f"{canary} org"}, headers=account.headers
    )
    assert made.status_code == 201, made.text
    organization_id = made.json()["id"]
    team = {**account.headers, "Saassy-Organization": organization_id}
    secret_value = f"value-{uuid.uuid4().hex}"  # never in an export
    put = await client.put(
        f"/api/v1/secrets/{canary}_SECRET", json={"value": secret_value}, headers=team
    )
    assert put.status_code == 201, put.text
    key = await client.post("/api/v1/api-keys", json={"name": f"{canary} key"}, headers=team)
    assert key.status_code == 201, key.text
    task_id = await _task_with_output(ctx, uuid.UUID(organization_id), canary, tmp)
    return Customer(account, canary, organization_id, str(task_id), secret_value, key.json()["key"])


async def _task_with_output(
    ctx: AppContext, organization_id: uuid.UUID, canary: str, tmp: Path
) -> uuid.UUID:
    """A finished task with its log, artifact and usage; a schedule; a webhook endpoint."""
    now = utcnow()
    async with ctx.sessionmaker() as session, session.begin():
        task = Task(
            organization_id=organization_id,
            type="echo",
            status=TaskStatus.succeeded,
            priority=0,
            input={"text": f"{canary} input"},
            result={"text": f"{canary} result"},
            timeout_s=10,
            max_attempts=1,
            attempt_count=1,
            run_after=now,
            finished_at=now,
        )
        session.add(task)
        await session.flush()
        session.add(
            TaskAttempt(task_id=task.id, organization_id=organization_id, number=1, exit_code=0)
        )
        session.add(
            TaskLogChunk(
                task_id=task.id,
                organization_id=organization_id,
                attempt_number=1,
                seq=1,
                stream="stdout",
                data=f"{canary} log line\n",
            )
        )
        session.add(
            UsageRecord(
                organization_id=organization_id,
                task_id=task.id,
                task_type="echo",
                attempt_number=1,
                metric="cpu_seconds",
                quantity=1.5,
                recorded_at=now,
            )
        )
        source = tmp / f"{canary}.txt"
        source.write_text(f"{canary} artifact body")
        stored = await ctx.storage.put(
            artifact_key(organization_id, task.id, 1, "out/report.txt"), source
        )
        session.add(
            Artifact(
                task_id=task.id,
                organization_id=organization_id,
                attempt_number=1,
                path="out/report.txt",
                size_bytes=stored.size_bytes,
                sha256=stored.sha256,
                content_type="text/plain",
                storage_key=stored.key,
            )
        )
        session.add(
            Schedule(
                organization_id=organization_id,
                name=f"{canary} schedule",
                task_type="echo",
                input={"text": f"{canary} scheduled input"},
                interval_s=3600,
                next_run_at=now + timedelta(hours=1),
            )
        )
        session.add(
            WebhookEndpoint(
                organization_id=organization_id,
                url=f"https://{canary.lower()}.example.com/hook",
                event_types=[],
                secret=f"sealed-whsec-{canary}",
            )
        )
    return task.id


async def build_exports(ctx: AppContext, **options: Any) -> ExportRound:
    return await ExportBuilder(ctx.sessionmaker, ctx.settings, ctx.storage, **options).run_once()


@dataclass
class Archive:
    """An export's ZIP, opened."""

    entries: dict[str, bytes]

    dated: tuple[int, ...] = ()

    @classmethod
    def of(cls, body: bytes) -> Archive:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            entries = {name: archive.read(name) for name in archive.namelist()}
            return cls(entries, archive.getinfo("manifest.json").date_time)

    @property
    def manifest(self) -> dict[str, Any]:
        manifest: dict[str, Any] = json.loads(self.entries["manifest.json"])
        return manifest

    def table(self, name: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = json.loads(self.entries[f"tables/{name}.json"])
        return rows

    def text(self) -> str:
        """Every entry as text, to search for what must never be there."""
        return "\n".join(data.decode("utf-8", "replace") for data in self.entries.values())

    def check_manifest(self) -> None:
        """Each listed file is in the archive with its size and digest; each table's count
        is its number of rows."""
        manifest = self.manifest
        listed = {entry["path"] for entry in manifest["files"]}
        assert listed | {"manifest.json"} == set(self.entries)
        for entry in manifest["files"]:
            data = self.entries[entry["path"]]
            assert entry["size_bytes"] == len(data)
            assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        for table in manifest["tables"]:
            assert table["rows"] == len(self.table(table["name"]))


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
