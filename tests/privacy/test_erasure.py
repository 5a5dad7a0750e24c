"""Deleting an account: re-authenticated, refused where it would orphan an organization, and
afterwards nothing in the database, the storage or the logs names the person."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
import structlog
from sqlalchemy import select

from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import (
    AuditEntry,
    DataExport,
    Membership,
    NoticeSent,
    Role,
    Task,
    TaskStatus,
    User,
)
from saassy.notifications.task_failed import hour_key
from saassy.privacy.erasure_jobs import AccountEraser
from tests.conftest import SignUp
from tests.privacy.erasure_support import (
    database_hits,
    directory_hits,
    seed_links_to_others,
    seed_organization,
)
from tests.privacy.support import build_exports
from tests.vault.support import put_secret

DELETION = "/api/v1/account/deletion"


async def _new_organization(client: httpx.AsyncClient, headers: dict[str, str], name: str) -> str:
    response = await client.post("/api/v1/organizations", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _eraser(ctx: AppContext) -> AccountEraser:
    return AccountEraser(ctx.sessionmaker, ctx.settings, ctx.storage)


async def test_after_the_deletion_nothing_names_the_user_anywhere(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    other_canary = f"kept-{uuid.uuid4().hex}"
    ada = await signup(organization=f"Ada {canary}")
    bob = await signup()
    second = await _new_organization(client, ada.headers, f"Side {canary}")
    assert (await put_secret(client, ada.headers, "TOKEN", canary)).status_code == 201
    assert (await put_secret(client, ada.headers, "TOKEN", canary, second)).status_code == 201
    assert (await put_secret(client, bob.headers, "TOKEN", other_canary)).status_code == 201
    key = await client.post("/api/v1/api-keys", json={"name": f"ci {canary}"}, headers=ada.headers)
    assert key.status_code == 201, key.text
    api_key = key.json()["key"]
    # A signed-in session, a failed sign-in and a sign-in link: audit entries, magic links.
    login = {"email": ada.email, "password": ada.password}
    assert (await client.post("/api/v1/auth/login", json=login)).status_code == 200
    wrong = {"email": ada.email, "password": "not the password"}
    assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
    magic = await client.post("/api/v1/auth/magic-link", json={"email": ada.email})
    assert magic.status_code == 202
    ada_id, bob_org = uuid.UUID(ada.user_id), uuid.UUID(bob.organization_id)
    # Her e-mail preferences, a notice counter keyed by her id, and a ready data export.
    prefs = {"task_failed": True}
    opted = await client.put("/api/v1/account/notifications", json=prefs, headers=ada.headers)
    assert opted.status_code == 200, opted.text
    exported = await client.post("/api/v1/account/export", headers=ada.headers)
    assert exported.status_code == 202, exported.text
    assert (await build_exports(ctx)).built == 1
    async with ctx.sessionmaker() as session, session.begin():
        archive = (await session.scalars(select(DataExport.storage_key))).one()
        session.add(NoticeSent(key=hour_key(ada_id, utcnow()), count=1))
    assert archive is not None
    assert archive in await ctx.storage.keys("exports/")
    ada_orgs = [uuid.UUID(ada.organization_id), uuid.UUID(second)]
    async with ctx.sessionmaker() as session, session.begin():
        for org_id in ada_orgs:
            await seed_organization(ctx, session, org_id, ada_id, canary, tmp_path)
        queued = await seed_organization(
            ctx, session, ada_orgs[0], ada_id, canary, tmp_path, status=TaskStatus.queued
        )
        bob_task = await seed_organization(
            ctx, session, bob_org, uuid.UUID(bob.user_id), other_canary, tmp_path
        )
        await seed_links_to_others(
            ctx,
            session,
            user_id=ada_id,
            email=ada.email,
            own_organization=ada_orgs[1],
            shared_organization=bob_org,
            canary=canary,
        )
        # A task Ada submitted in Bob's organization: Bob's, so it stays without her name.
        shared_task = await seed_organization(ctx, session, bob_org, ada_id, other_canary, tmp_path)
    needles = [ada.email, ada.user_id, *map(str, ada_orgs), canary]
    async with ctx.sessionmaker() as session:
        before = "\n".join(await database_hits(session, needles))
    assert all(needle.lower() in before for needle in needles), "the scan would be blind"
    assert directory_hits(ctx.settings.data_dir, [canary])

    refused = await client.post(DELETION, json={"password": "not it"}, headers=ada.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "wrong_password"
    async with ctx.sessionmaker() as session:
        user = await session.get(User, ada_id)
        assert user is not None
        assert user.deletion_requested_at is None

    with_key = await client.post(
        DELETION, json={"password": ada.password}, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert with_key.status_code == 403
    assert with_key.json()["error"]["code"] == "user_required"

    accepted = await client.post(DELETION, json={"password": ada.password}, headers=ada.headers)
    assert accepted.status_code == 202, accepted.text
    assert sorted(accepted.json()["deleted_organizations"]) == sorted(map(str, ada_orgs))
    assert accepted.json()["left_organizations"] == [str(bob_org)]
    # Refused at once: sign-in, the access token, the API key, the refresh token.
    assert (await client.post("/api/v1/auth/login", json=login)).status_code == 401
    assert (await client.get("/api/v1/me", headers=ada.headers)).status_code == 401
    key_headers = {"Authorization": f"Bearer {api_key}"}
    assert (await client.get("/api/v1/tasks", headers=key_headers)).status_code == 401
    refresh = {"refresh_token": ada.refresh_token}
    assert (await client.post("/api/v1/auth/refresh", json=refresh)).status_code == 401
    async with ctx.sessionmaker() as session:
        task = await session.get(Task, queued)
        assert task is not None
        assert task.status == TaskStatus.canceled

    erased = await _eraser(ctx).erase_due()
    assert len(erased) == 1
    structlog.get_logger("tests").info("capture check", marker="log-capture-works")

    async with ctx.sessionmaker() as session:
        assert await database_hits(session, needles) == []
        receipt = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "account.deleted"))
        ).one()
        assert receipt.target_id == erased[0].pseudonym
        assert receipt.details["organizations"] == 2
        assert receipt.details["tasks"] == 3
        assert receipt.details["stored_objects"] == 4  # 3 artifacts and the export's archive
        assert receipt.details["notices_sent"] == 1
        # Bob's organization keeps its data: his canary, and the task Ada submitted there.
        assert await database_hits(session, [other_canary])
        kept = {t: await session.get(Task, t) for t in (bob_task, shared_task)}
        assert {t: task.submitted_by_user_id for t, task in kept.items() if task} == {
            bob_task: uuid.UUID(bob.user_id),
            shared_task: None,
        }
        members = await session.scalars(
            select(Membership).where(Membership.organization_id == bob_org)
        )
        assert [(m.user_id, m.role) for m in members] == [(uuid.UUID(bob.user_id), Role.owner)]
        pseudonym = erased[0].pseudonym
        pseudonymized = await session.scalars(
            select(AuditEntry).where(AuditEntry.actor_user_id == pseudonym)
        )
        assert {(e.action, e.organization_id, e.ip, e.user_agent) for e in pseudonymized} == {
            ("auth.signed_in", None, None, None),
            ("data_export.requested", None, None, None),
            ("member.role_changed", bob_org, None, None),
        }

    data_dir = ctx.settings.data_dir
    # The archive is compressed, so the scan below could not read it: it must be gone.
    assert await ctx.storage.keys("exports/") == []
    assert directory_hits(data_dir, needles) == []
    assert directory_hits(data_dir, [other_canary])  # Bob's artifacts are still stored
    captured = capfd.readouterr()
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "saassy.log").write_text(captured.out + captured.err + caplog.text)
    assert "log-capture-works" in (logs / "saassy.log").read_text(), "the capture saw nothing"
    assert directory_hits(logs, needles) == []


async def test_the_sole_owner_of_an_organization_with_members_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    bob = await signup()
    shared = await _new_organization(client, ada.headers, "Shared")
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            Membership(
                organization_id=uuid.UUID(shared), user_id=uuid.UUID(bob.user_id), role=Role.admin
            )
        )

    preview = await client.get(DELETION, headers=ada.headers)
    assert preview.json()["blocking_organizations"] == [shared]
    refused = await client.post(DELETION, json={"password": ada.password}, headers=ada.headers)

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "sole_owner"
    assert refused.json()["error"]["details"]["organizations"] == [shared]
    assert (await client.get("/api/v1/me", headers=ada.headers)).status_code == 200
    assert await _eraser(ctx).erase_due() == []


async def test_an_account_without_a_password_confirms_with_an_emailed_code(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    from tests.email.mail import latest_magic_token, outbox

    email = f"nopass-{uuid.uuid4().hex[:8]}@example.com"
    assert (await client.post("/api/v1/auth/magic-link", json={"email": email})).status_code == 202
    token = await latest_magic_token(ctx, email)
    signed_in = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}

    without = await client.post(DELETION, json={}, headers=headers)
    assert without.status_code == 403
    assert without.json()["error"]["code"] == "reauthentication_required"
    assert (await client.post(f"{DELETION}/code", headers=headers)).status_code == 202
    code = (await outbox(ctx, email))[-1].body.split("code where you asked for it:")[1].split()[0]
    bad = await client.post(DELETION, json={"code": "not-the-code"}, headers=headers)
    assert bad.status_code == 401
    accepted = await client.post(DELETION, json={"code": code}, headers=headers)
    assert accepted.status_code == 202, accepted.text

    assert len(await _eraser(ctx).erase_due()) == 1
    async with ctx.sessionmaker() as session:
        assert await database_hits(session, [email, signed_in.json()["user"]["id"]]) == []


async def test_erasure_waits_for_running_tasks_to_end(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, tmp_path: Path
) -> None:
    ada = await signup()
    org_id = uuid.UUID(ada.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        running = await seed_organization(
            ctx, session, org_id, uuid.UUID(ada.user_id), "run", tmp_path, status=TaskStatus.running
        )
    accepted = await client.post(DELETION, json={"password": ada.password}, headers=ada.headers)
    assert accepted.status_code == 202

    async with ctx.sessionmaker() as session:
        task = await session.get(Task, running)
        assert task is not None
        assert task.cancel_requested_at is not None
    assert await _eraser(ctx).erase_due() == []  # still running: nothing removed yet
    async with ctx.sessionmaker() as session, session.begin():
        task = await session.get(Task, running)
        assert task is not None
        task.status = TaskStatus.canceled
    assert len(await _eraser(ctx).erase_due()) == 1


async def test_password_guesses_meet_the_login_limits(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    answers = [
        (await client.post(DELETION, json={"password": f"guess {n}"}, headers=ada.headers))
        for n in range(12)
    ]
    assert {a.status_code for a in answers[:3]} == {403}
    assert answers[-1].status_code == 429
