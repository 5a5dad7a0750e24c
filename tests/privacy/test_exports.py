"""GDPR data exports through the API: what the archive holds, whom it is for, and its end.

Two customers fill every kind of data with a canary string; each export holds its
requester's canaries where the layout says and not one of the other customer's.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import DataExport, ExportStatus, Membership, Role, TaskLogChunk
from saassy.privacy import export_archive
from saassy.privacy.export_jobs import STALE_AFTER, ExportBuilder, ExportRound
from saassy.privacy.export_repository import DataExportRepository
from saassy.privacy.export_tables import exported_tables
from saassy.storage.base import StorageUnavailable, StoredObject
from saassy.storage.keys import export_key
from saassy.storage.local import LocalDirectoryStorage
from tests.audit.support import entries
from tests.conftest import SignUp
from tests.email.mail import outbox
from tests.privacy.support import Archive, Customer, build_exports, customer, sha256_hex


@pytest.fixture
async def a(client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, tmp_path: Path) -> Customer:
    return await customer(client, ctx, signup, "CANARY_A", tmp_path)


@pytest.fixture
async def b(client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, tmp_path: Path) -> Customer:
    return await customer(client, ctx, signup, "CANARY_B", tmp_path)


async def export_of(
    client: httpx.AsyncClient, ctx: AppContext, who: Customer, path: str = "/api/v1/account/export"
) -> tuple[str, Archive]:
    requested = await client.post(path, headers=who.headers)
    assert requested.status_code == 202, requested.text
    export = requested.json()
    assert export["status"] == "queued"
    assert export["status_url"] == f"/api/v1/account/exports/{export['id']}"
    built = await build_exports(ctx)
    assert built.built == 1
    assert built.failed == 0
    status = await client.get(export["status_url"], headers=who.headers)
    assert status.json()["status"] == "ready", status.text
    download = await client.get(status.json()["download_url"], headers=who.headers)
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/zip"
    return export["id"], Archive.of(download.content)


def assert_only_own(archive: Archive, own: Customer, other: Customer) -> None:
    text = archive.text()
    assert other.canary.lower() not in text.lower()
    assert other.account.email not in text
    for secret in (own.secret_value, other.secret_value, own.api_key, other.api_key):
        assert secret not in text
    assert sha256_hex(own.api_key) not in text  # the key's hash neither
    assert "sealed-whsec" not in text
    assert "password_hash" not in text
    assert "$argon2" not in text
    assert "token_hash" not in text
    assert "key_hash" not in text


async def test_an_account_export_holds_every_canary_of_its_user_and_none_of_another(
    client: httpx.AsyncClient, ctx: AppContext, a: Customer, b: Customer
) -> None:
    export_id, archive = await export_of(client, ctx, a)
    archive.check_manifest()
    manifest = archive.manifest
    assert manifest["layout_version"] == 1
    generated = datetime.fromisoformat(manifest["generated_at"])
    # Entries are dated when built, not 1980 (to the even second: the format's resolution).
    year, month, day, hour, minute, second = generated.timetuple()[:6]
    assert archive.dated == (year, month, day, hour, minute, second // 2 * 2)
    assert manifest["kind"] == "account"
    assert manifest["requested_by"] == {"user_id": a.account.user_id, "email": a.account.email}
    listed = [table["name"] for table in manifest["tables"]]
    assert listed == [name for name, rule in exported_tables() if not rule.files_only]
    assert "outbox_emails" in manifest["excluded_tables"]

    canary = a.canary
    [user] = archive.table("users")
    assert user["email"] == a.account.email
    assert "password_hash" not in user
    assert {o["name"] for o in archive.table("organizations")} >= {f"{canary} org"}
    assert {o["id"] for o in archive.table("organizations")} == {
        a.organization_id,
        a.account.organization_id,
    }
    assert {m["user_id"] for m in archive.table("memberships")} == {a.account.user_id}
    [secret] = archive.table("vault_items")
    assert secret["name"] == f"{canary}_SECRET"
    assert "sealed" not in secret
    [key] = archive.table("api_keys")
    assert key["name"] == f"{canary} key"
    assert "key_hash" not in key
    [task] = archive.table("tasks")
    assert task["id"] == a.task_id
    assert task["input"] == {"text": f"{canary} input"}
    assert task["result"] == {"text": f"{canary} result"}
    assert [s["name"] for s in archive.table("schedules")] == [f"{canary} schedule"]
    [endpoint] = archive.table("webhook_endpoints")
    assert endpoint["url"] == f"https://{canary.lower()}.example.com/hook"
    assert "secret" not in endpoint
    assert "previous_secret" not in endpoint
    assert [u["metric"] for u in archive.table("usage_records")] == ["cpu_seconds"]
    actions = {entry["action"] for entry in archive.table("audit_entries")}
    assert {"api_key.created", "secret.set", "data_export.requested"} <= actions
    assert any(
        entry["details"].get("name") == f"{canary} key" for entry in archive.table("audit_entries")
    )
    assert archive.table("browser_sessions") == []  # signed in through the API only
    assert len(archive.table("refresh_tokens")) >= 1
    [artifact] = archive.table("artifacts")
    assert "storage_key" not in artifact
    [this_export] = archive.table("data_exports")
    assert this_export["id"] == export_id
    assert this_export["status"] == "running"

    files = f"files/tasks/{a.task_id}"
    assert archive.entries[f"{files}/logs/attempt-1.stdout.log"] == f"{canary} log line\n".encode()
    assert archive.entries[f"{files}/artifacts/1/out/report.txt"] == (
        f"{canary} artifact body".encode()
    )
    assert "tables/task_log_chunks.json" not in archive.entries
    assert_only_own(archive, a, b)

    # And the other way round.
    _, theirs = await export_of(client, ctx, b)
    assert {o["name"] for o in theirs.table("organizations")} >= {"CANARY_B org"}
    assert theirs.entries[f"files/tasks/{b.task_id}/logs/attempt-1.stdout.log"]
    assert_only_own(theirs, b, a)


async def test_the_ready_export_is_mailed_audited_and_only_its_requester_downloads_it(
    client: httpx.AsyncClient, ctx: AppContext, a: Customer, b: Customer
) -> None:
    export_id, _ = await export_of(client, ctx, a)
    [mail] = [m for m in await outbox(ctx, a.account.email) if "export" in m.subject]
    assert f"/app/account/exports/{export_id}/download" in mail.body
    assert [e.target_id for e in await entries(ctx, "data_export.requested")] == [
        uuid.UUID(export_id)
    ]
    assert len(await entries(ctx, "data_export.downloaded")) == 1

    for path in ("", "/download"):
        other = await client.get(f"/api/v1/account/exports/{export_id}{path}", headers=b.headers)
        assert other.status_code == 404, other.text
    by_key = await client.get(
        f"/api/v1/account/exports/{export_id}", headers={"Authorization": f"Bearer {a.api_key}"}
    )
    assert by_key.status_code == 403
    assert by_key.json()["error"]["code"] == "user_required"
    listed = await client.get("/api/v1/account/exports", headers=a.headers)
    assert [e["id"] for e in listed.json()["items"]] == [export_id]


async def test_after_expiry_the_link_answers_410_and_the_sweep_removes_the_archive(
    client: httpx.AsyncClient, ctx: AppContext, a: Customer
) -> None:
    export_id, _ = await export_of(client, ctx, a)
    key = export_key(uuid.UUID(export_id))
    assert await ctx.storage.exists(key)
    later = utcnow() + timedelta(days=ctx.settings.export_expiry_days, minutes=1)
    swept = await build_exports(ctx, clock=lambda: later)
    assert swept.expired == 1
    assert not await ctx.storage.exists(key)
    gone = await client.get(f"/api/v1/account/exports/{export_id}/download", headers=a.headers)
    assert gone.status_code == 410
    assert gone.json()["error"]["code"] == "export_expired"
    status = await client.get(f"/api/v1/account/exports/{export_id}", headers=a.headers)
    assert status.json()["status"] == "expired"
    assert status.json()["download_url"] is None


async def test_a_link_past_its_expiry_answers_410_before_the_sweep_ran(
    client: httpx.AsyncClient, ctx: AppContext, a: Customer
) -> None:
    export_id, _ = await export_of(client, ctx, a)
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(DataExport).values(expires_at=utcnow() - timedelta(seconds=1)))
    gone = await client.get(f"/api/v1/account/exports/{export_id}/download", headers=a.headers)
    assert gone.status_code == 410


async def test_only_an_owner_exports_an_organization_which_then_includes_its_members(
    client: httpx.AsyncClient, ctx: AppContext, a: Customer, b: Customer
) -> None:
    path = f"/api/v1/organizations/{a.organization_id}/export"
    outsider = await client.post(path, headers=b.headers)
    assert outsider.status_code == 404  # not B's organization: as if it did not exist
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            Membership(
                organization_id=uuid.UUID(a.organization_id),
                user_id=uuid.UUID(b.account.user_id),
                role=Role.member,
            )
        )
    ctx.user_cache.clear()  # as an invitation's acceptance does (AccessChanged): this is raw SQL
    member = await client.post(path, headers=b.headers)
    assert member.status_code == 403
    assert member.json()["error"]["code"] == "owner_required"

    org_export, archive = await export_of(client, ctx, a, path)
    archive.check_manifest()
    assert archive.manifest["kind"] == "organization"
    assert archive.manifest["organization_ids"] == [a.organization_id]
    members = {user["email"] for user in archive.table("users")}
    assert members == {a.account.email, b.account.email}  # the owner's export names members
    assert all(set(user) == {"id", "email", "created_at"} for user in archive.table("users"))
    assert archive.table("refresh_tokens") == []
    assert archive.table("magic_links") == []
    assert [o["id"] for o in archive.table("organizations")] == [a.organization_id]
    # Nothing of B's own organization, and no secret of anyone.
    text = archive.text()
    assert "CANARY_B org" not in text
    assert "CANARY_B_SECRET" not in text
    assert a.secret_value not in text
    assert b.secret_value not in text

    # Once no longer an owner, the requester cannot download it any more.
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Membership)
            .where(Membership.user_id == uuid.UUID(a.account.user_id))
            .where(Membership.organization_id == uuid.UUID(a.organization_id))
            .values(role=Role.admin)
        )
    ctx.user_cache.clear()  # as a role change does (AccessChanged): this is raw SQL
    demoted = await client.get(f"/api/v1/account/exports/{org_export}/download", headers=a.headers)
    assert demoted.status_code == 403

    # A's account export, by contrast, names no other member.
    _, own = await export_of(client, ctx, a)
    assert b.account.email not in own.text()


async def test_one_export_at_a_time_and_a_daily_limit(
    client: httpx.AsyncClient, ctx: AppContext, a: Customer
) -> None:
    first = await client.post("/api/v1/account/export", headers=a.headers)
    assert first.status_code == 202
    again = await client.post("/api/v1/account/export", headers=a.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "export_in_progress"
    await build_exports(ctx)
    for _ in range(ctx.settings.export_limit_per_day - 1):
        assert (await client.post("/api/v1/account/export", headers=a.headers)).status_code == 202
        await build_exports(ctx)
    limited = await client.post("/api/v1/account/export", headers=a.headers)
    assert limited.status_code == 429, limited.text
    assert 0 < int(limited.headers["Retry-After"]) <= 24 * 3600


async def test_an_api_key_cannot_request_an_export(client: httpx.AsyncClient, a: Customer) -> None:
    headers = {"Authorization": f"Bearer {a.api_key}"}
    for path in ("/api/v1/account/export", f"/api/v1/organizations/{a.organization_id}/export"):
        refused = await client.post(path, headers=headers)
        assert refused.status_code == 403, refused.text


class RefusingStorage(LocalDirectoryStorage):
    async def put(self, key: str, source: Path) -> StoredObject:
        raise StorageUnavailable("the bucket does not answer")


async def test_a_build_that_fails_marks_the_export_failed_and_frees_the_user(
    client: httpx.AsyncClient, ctx: AppContext, a: Customer, tmp_path: Path
) -> None:
    requested = await client.post("/api/v1/account/export", headers=a.headers)
    export_id = requested.json()["id"]
    storage = RefusingStorage(tmp_path / "refusing")
    done = await ExportBuilder(ctx.sessionmaker, ctx.settings, storage).run_once()
    assert done.failed == 1
    status = (await client.get(f"/api/v1/account/exports/{export_id}", headers=a.headers)).json()
    assert status["status"] == "failed"
    assert status["download_url"] is None
    assert not list((ctx.settings.data_dir / "exports").iterdir())  # no half-written archive
    download = await client.get(f"/api/v1/account/exports/{export_id}/download", headers=a.headers)
    assert download.status_code == 409
    assert (await client.post("/api/v1/account/export", headers=a.headers)).status_code == 202


async def test_a_claim_left_by_a_dead_builder_is_taken_over_and_its_late_outcome_dropped(
    client: httpx.AsyncClient, ctx: AppContext, a: Customer
) -> None:
    await client.post("/api/v1/account/export", headers=a.headers)
    now = utcnow()
    async with ctx.sessionmaker() as session, session.begin():
        dead = await DataExportRepository(session).claim_next(now, now - STALE_AFTER)
    assert dead is not None
    assert (await build_exports(ctx)).built == 0  # claimed, and not yet stale
    later = now + STALE_AFTER + timedelta(minutes=1)
    assert (await build_exports(ctx, clock=lambda: later)).built == 1
    async with ctx.sessionmaker() as session, session.begin():
        late = await DataExportRepository(session).finish(
            dead.id, now, status=ExportStatus.failed, error="late"
        )
    assert late is False
    status = await client.get(f"/api/v1/account/exports/{dead.id}", headers=a.headers)
    assert status.json()["status"] == "ready"


async def test_tables_and_logs_read_page_by_page_come_out_whole_and_in_order(
    client: httpx.AsyncClient, ctx: AppContext, a: Customer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_archive, "PAGE", 1)  # every row and log chunk its own page
    async with ctx.sessionmaker() as session, session.begin():
        for seq in (2, 3):
            session.add(
                TaskLogChunk(
                    task_id=uuid.UUID(a.task_id),
                    organization_id=uuid.UUID(a.organization_id),
                    attempt_number=1,
                    seq=seq,
                    stream="stdout",
                    data=f"line {seq}\n",
                )
            )
    _, archive = await export_of(client, ctx, a)
    archive.check_manifest()
    log = archive.entries[f"files/tasks/{a.task_id}/logs/attempt-1.stdout.log"].decode()
    assert log == f"{a.canary} log line\nline 2\nline 3\n"
    assert len(archive.table("organizations")) == 2
    assert len(archive.table("audit_entries")) >= 3


class WatchedBuilder(ExportBuilder):
    """Says when a round built something."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.built = asyncio.Event()

    async def run_once(self) -> ExportRound:
        done = await super().run_once()
        if done.built:
            self.built.set()
        return done


async def test_the_apps_builder_starts_right_after_the_request_is_committed(
    client: httpx.AsyncClient, ctx: AppContext, a: Customer
) -> None:
    builder = WatchedBuilder(
        ctx.sessionmaker, ctx.settings, ctx.storage, wakeup=ctx.export_wakeup, poll_s=3600
    )
    builder.start()
    try:
        await asyncio.sleep(0.1)  # its first round finds nothing, then waits for a wake-up
        requested = await client.post("/api/v1/account/export", headers=a.headers)
        async with asyncio.timeout(20):  # an hour's poll otherwise
            await builder.built.wait()
        status = await client.get(requested.json()["status_url"], headers=a.headers)
        assert status.json()["status"] == "ready"
    finally:
        await builder.stop()
