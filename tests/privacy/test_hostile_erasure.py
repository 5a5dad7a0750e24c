"""Hostile probes of account deletion: owners whose deletion is already under way must not
count as the owner who keeps an organization's other members from being orphaned."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import select, text

from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import Membership, Organization, Role, User
from saassy.privacy import erasure_jobs
from saassy.privacy.erasure import request_account_deletion
from saassy.privacy.erasure_jobs import AccountEraser
from tests.conftest import Account, SignUp, on_postgresql
from tests.events.support import RecordedLog

DELETION = "/api/v1/account/deletion"


async def test_two_owners_deleting_one_after_the_other_cannot_orphan_the_members(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    bob = await signup()
    cy = await signup()
    made = await client.post("/api/v1/organizations", json={"name": "Shared"}, headers=ada.headers)
    assert made.status_code == 201, made.text
    shared = uuid.UUID(made.json()["id"])
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            Membership(organization_id=shared, user_id=uuid.UUID(bob.user_id), role=Role.owner)
        )
        session.add(
            Membership(organization_id=shared, user_id=uuid.UUID(cy.user_id), role=Role.member)
        )

    first = await client.post(DELETION, json={"password": ada.password}, headers=ada.headers)
    assert first.status_code == 202, first.text
    # Ada's deletion is under way (she cannot sign in again): Bob is now Shared's only owner.
    preview = await client.get(DELETION, headers=bob.headers)
    assert preview.json()["blocking_organizations"] == [str(shared)], preview.text
    second = await client.post(DELETION, json={"password": bob.password}, headers=bob.headers)
    assert second.status_code == 409, second.text

    # Whatever the API said, the members must never be left without an owner.
    await AccountEraser(ctx.sessionmaker, ctx.settings, ctx.storage).erase_due()
    async with ctx.sessionmaker() as session:
        roles = list(
            await session.scalars(
                select(Membership.role).where(Membership.organization_id == shared)
            )
        )
    assert Role.owner in roles, roles


async def _shared(
    client: httpx.AsyncClient, ctx: AppContext, owners: list[Account], members: list[Account]
) -> uuid.UUID:
    """An organization the first owner creates, with the other owners and the members in it."""
    made = await client.post(
        "/api/v1/organizations", json={"name": "Shared"}, headers=owners[0].headers
    )
    assert made.status_code == 201, made.text
    shared = uuid.UUID(made.json()["id"])
    async with ctx.sessionmaker() as session, session.begin():
        for account, role in [(o, Role.owner) for o in owners[1:]] + [
            (m, Role.member) for m in members
        ]:
            session.add(
                Membership(organization_id=shared, user_id=uuid.UUID(account.user_id), role=role)
            )
    return shared


def _member(shared: uuid.UUID, account: Account) -> str:
    return f"/api/v1/organizations/{shared}/members/{account.user_id}"


async def test_an_owner_being_deleted_no_longer_lets_the_other_owner_leave_or_step_down(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada, bob, cy = await signup(), await signup(), await signup()
    shared = await _shared(client, ctx, [ada, bob], [cy])
    first = await client.post(DELETION, json={"password": ada.password}, headers=ada.headers)
    assert first.status_code == 202, first.text

    for refused in (
        await client.delete(_member(shared, bob), headers=bob.headers),
        await client.patch(_member(shared, bob), json={"role": "admin"}, headers=bob.headers),
    ):
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "last_owner"
    # Ada, on her way out, is no owner to protect: Bob may remove her (or demote her).
    removed = await client.delete(_member(shared, ada), headers=bob.headers)
    assert removed.status_code == 204, removed.text


async def test_two_owners_without_other_members_may_both_delete_their_accounts(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada, bob = await signup(), await signup()
    shared = await _shared(client, ctx, [ada, bob], [])
    for account in (ada, bob):
        answer = await client.post(
            DELETION, json={"password": account.password}, headers=account.headers
        )
        assert answer.status_code == 202, answer.text
    # Nobody is left behind: the organization goes with whichever account is erased last.
    assert len(await AccountEraser(ctx.sessionmaker, ctx.settings, ctx.storage).erase_due()) == 2
    async with ctx.sessionmaker() as session:
        assert await session.get(Organization, shared) is None


async def test_the_eraser_waits_rather_than_leave_members_without_an_owner(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada, bob, cy = await signup(), await signup(), await signup()
    shared = await _shared(client, ctx, [ada, bob], [cy])
    # Both owners' deletions were accepted before the request counted only live owners.
    async with ctx.sessionmaker() as session, session.begin():
        for account in (ada, bob):
            user = await session.get(User, uuid.UUID(account.user_id))
            assert user is not None
            user.deletion_requested_at = user.disabled_at = utcnow()
    # Dee asked after them: the two that wait must not keep her from her turn.
    dee = await signup()
    gone = await client.post(DELETION, json={"password": dee.password}, headers=dee.headers)
    assert gone.status_code == 202, gone.text
    recorded = RecordedLog()
    monkeypatch.setattr(erasure_jobs, "log", recorded)
    monkeypatch.setattr(erasure_jobs, "BATCH", 1)
    eraser = AccountEraser(ctx.sessionmaker, ctx.settings, ctx.storage)

    assert len(await eraser.erase_due()) == 1
    async with ctx.sessionmaker() as session:
        assert await session.get(User, uuid.UUID(dee.user_id)) is None
    assert (
        recorded.entries.count(
            ("account.erasure_waits_for_owner", {"organizations": [str(shared)]})
        )
        == 2
    )
    async with ctx.sessionmaker() as session:
        assert await session.get(User, uuid.UUID(ada.user_id)) is not None
        assert await session.get(User, uuid.UUID(bob.user_id)) is not None

    # Once a member who may act is an owner, both go.
    async with ctx.sessionmaker() as session, session.begin():
        membership = await session.scalar(
            select(Membership).where(
                Membership.organization_id == shared,
                Membership.user_id == uuid.UUID(cy.user_id),
            )
        )
        assert membership is not None
        membership.role = Role.owner
    assert len(await eraser.erase_due()) == 2
    async with ctx.sessionmaker() as session:
        rows = (
            await session.execute(
                select(Membership.user_id, Membership.role).where(
                    Membership.organization_id == shared
                )
            )
        ).all()
    assert [(str(user_id), Role(role)) for user_id, role in rows] == [(cy.user_id, Role.owner)]


RACES = "SQLite's BEGIN IMMEDIATE serializes the two"


@pytest.mark.skipif(not on_postgresql(), reason=RACES)
async def test_two_owners_asking_at_once_cannot_both_leave(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada, bob, cy = await signup(), await signup(), await signup()
    await _shared(client, ctx, [ada, bob], [cy])
    answers = await asyncio.gather(
        *(
            client.post(DELETION, json={"password": a.password}, headers=a.headers)
            for a in (ada, bob)
        )
    )
    assert sorted(a.status_code for a in answers) == [202, 409], [a.text for a in answers]
    [refused] = [a for a in answers if a.status_code == 409]
    assert refused.json()["error"]["code"] == "sole_owner"


async def _waiting_on_a_lock(ctx: AppContext) -> bool:
    async with ctx.sessionmaker() as session:
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


@pytest.mark.skipif(not on_postgresql(), reason=RACES)
@pytest.mark.parametrize("second", ["delete_account", "leave"])
async def test_what_the_other_owner_does_meanwhile_waits_for_a_deletion_to_commit(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, second: str
) -> None:
    ada, bob, cy = await signup(), await signup(), await signup()
    shared = await _shared(client, ctx, [ada, bob], [cy])

    async def bobs_turn() -> httpx.Response:
        if second == "leave":
            return await client.delete(_member(shared, bob), headers=bob.headers)
        return await client.post(DELETION, json={"password": bob.password}, headers=bob.headers)

    # Ada's deletion is counted and written, not yet committed, when Bob's request comes.
    async with ctx.sessionmaker() as session, session.begin():
        user = await session.get(User, uuid.UUID(ada.user_id))
        assert user is not None
        await request_account_deletion(
            session, ctx.settings, user, password=ada.password, code=None
        )
        racing = asyncio.create_task(bobs_turn())
        # Until Bob's request waits for the organization's lock (or, unlocked, is answered).
        while not racing.done() and not await _waiting_on_a_lock(ctx):  # noqa: ASYNC110 - no event
            await asyncio.sleep(0.01)
    answer = await racing
    assert answer.status_code == 409, answer.text
    code = "last_owner" if second == "leave" else "sole_owner"
    assert answer.json()["error"]["code"] == code
