"""A process remembers a signed-in user's access (organizations, roles, plans, standing) read
for an access token, for `SAASSY_USER_ACCESS_CACHE_S` seconds: a removal, a role change or a
disabled account made elsewhere reaches it within that bound; made through it, at once.

Two apps on one database stand for two server processes; the second one's clock is moved by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, update

from saassy.app import create_app
from saassy.auth.dependencies import ORGANIZATION_HEADER
from saassy.auth.repository import AuthRepository
from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import Membership, User
from tests.conftest import SignUp, client_for
from tests.organizations.support import add_member, create_organization
from tests.second_process import Clock
from tests.second_process import other as other  # a fixture
from tests.second_process import other_app as other_app  # a fixture

TTL_S = 2.0
ECHO = {"type": "echo", "input": {"message": "hi"}}


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(user_access_cache_s=TTL_S)


@pytest.fixture
def other_clock(other_app: FastAPI) -> Clock:
    clock = Clock()
    other_app.state.ctx.user_cache.clock = clock
    return clock


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[uuid.UUID]:
    """Every user whose access is read from the database, in order."""
    read: list[uuid.UUID] = []
    original = AuthRepository.user_access

    async def counted(self: AuthRepository, user_id: uuid.UUID) -> object:
        read.append(user_id)
        return await original(self, user_id)

    monkeypatch.setattr(AuthRepository, "user_access", counted)
    return read


def org_url(organization_id: str) -> str:
    return f"/api/v1/organizations/{organization_id}"


async def test_a_busy_access_token_reads_its_users_access_once_per_bound(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, reads: list[uuid.UUID]
) -> None:
    account = await signup()
    clock = Clock()
    ctx.user_cache.clock = clock
    reads.clear()
    for _ in range(5):
        assert (await client.get("/api/v1/tasks", headers=account.headers)).status_code == 200
    assert reads == [uuid.UUID(account.user_id)]
    clock.now += TTL_S
    assert (await client.get("/api/v1/tasks", headers=account.headers)).status_code == 200
    assert len(reads) == 2
    for _ in range(3):  # submissions too; any other change reads afresh (the next test)
        submitted = await client.post("/api/v1/tasks", json=ECHO, headers=account.headers)
        assert submitted.status_code == 202, submitted.text
    assert len(reads) == 2


async def test_another_process_drops_a_removed_member_within_the_bound(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    other: httpx.AsyncClient,
    other_clock: Clock,
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    member = await add_member(client, ctx, signup, owner, org["id"])
    assert (await other.get(org_url(org["id"]), headers=member.headers)).status_code == 200
    removed = await client.delete(
        f"{org_url(org['id'])}/members/{member.user_id}", headers=owner.headers
    )
    assert removed.status_code == 204
    # This process made the change: it forgot at the commit.
    assert (await client.get(org_url(org["id"]), headers=member.headers)).status_code == 404
    other_clock.now += TTL_S - 0.01
    assert (await other.get(org_url(org["id"]), headers=member.headers)).status_code == 200
    other_clock.now += 0.01
    assert (await other.get(org_url(org["id"]), headers=member.headers)).status_code == 404


async def test_a_new_organization_and_a_role_change_are_seen_at_once_by_the_process_that_made_them(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    assert (await client.get("/api/v1/organizations", headers=owner.headers)).status_code == 200
    org = await create_organization(client, owner)
    assert (await client.get(org_url(org["id"]), headers=owner.headers)).status_code == 200
    member = await add_member(client, ctx, signup, owner, org["id"])
    invite = {"email": "friend@example.com", "role": "member"}
    invitations = f"{org_url(org['id'])}/invitations"
    refused = await client.post(invitations, json=invite, headers=member.headers)
    assert refused.status_code == 403
    promoted = await client.patch(
        f"{org_url(org['id'])}/members/{member.user_id}",
        json={"role": "admin"},
        headers=owner.headers,
    )
    assert promoted.status_code == 200
    allowed = await client.post(invitations, json=invite, headers=member.headers)
    assert allowed.status_code == 201, allowed.text


async def test_a_disabled_account_is_refused_within_the_bound_and_never_remembered(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    other: httpx.AsyncClient,
    other_clock: Clock,
    other_app: FastAPI,
    reads: list[uuid.UUID],
) -> None:
    account = await signup()
    assert (await other.get("/api/v1/tasks", headers=account.headers)).status_code == 200
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(User).where(User.id == uuid.UUID(account.user_id)).values(disabled_at=utcnow())
        )
    other_clock.now += TTL_S
    reads.clear()
    for _ in range(2):
        refused = await other.get("/api/v1/tasks", headers=account.headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_token"
    assert len(reads) == 2  # read each time: a disabled user is not remembered
    assert len(other_app.state.ctx.user_cache) == 0


async def test_with_no_bound_every_request_reads_the_users_access(
    settings_factory: Callable[..., Settings], signup: SignUp, reads: list[uuid.UUID]
) -> None:
    application = create_app(settings_factory(user_access_cache_s=0), background=False)
    async with application.router.lifespan_context(application), client_for(application) as c:
        account = await signup()
        async with application.state.ctx.sessionmaker() as session, session.begin():
            # Not a member of anything any more, behind the app's back: seen at the next request.
            await session.execute(
                delete(Membership).where(Membership.user_id == uuid.UUID(account.user_id))
            )
        reads.clear()
        for _ in range(3):
            listed = await c.get("/api/v1/organizations", headers=account.headers)
            assert listed.status_code == 200
            assert listed.json()["items"] == []
        assert len(reads) == 3


async def test_within_the_bound_a_removed_or_demoted_admin_makes_nothing_that_outlives_it(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    other: httpx.AsyncClient,
) -> None:
    """Another process may still let them read for the bound, but an API key or an invitation
    made meanwhile would keep them in for good: a request that changes something reads the
    caller's access afresh."""
    owner = await signup()
    org = await create_organization(client, owner)
    removed = await add_member(client, ctx, signup, owner, org["id"], role="admin")
    demoted = await add_member(client, ctx, signup, owner, org["id"], role="admin")
    for admin in (removed, demoted):  # remembered by the other process
        assert (await other.get(org_url(org["id"]), headers=admin.headers)).status_code == 200
    members = f"{org_url(org['id'])}/members"
    gone = await client.delete(f"{members}/{removed.user_id}", headers=owner.headers)
    assert gone.status_code == 204
    member = {"role": "member"}
    changed = await client.patch(f"{members}/{demoted.user_id}", json=member, headers=owner.headers)
    assert changed.status_code == 200

    for admin, refusal in ((removed, 404), (demoted, 403)):
        in_org = {**admin.headers, ORGANIZATION_HEADER: org["id"]}
        key = await other.post("/api/v1/api-keys", json={"name": "kept"}, headers=in_org)
        assert key.status_code == refusal, key.text
        invite = {"email": f"back-{refusal}@example.com", "role": "admin"}
        invited = await other.post(
            f"{org_url(org['id'])}/invitations", json=invite, headers=admin.headers
        )
        assert invited.status_code == refusal, invited.text
    # Reading stays within the documented bound: the demoted admin still sees the organization.
    assert (await other.get(org_url(org["id"]), headers=demoted.headers)).status_code == 200
