"""Every audited action writes exactly one entry, with its actor, organization, address and
user agent; nothing secret or personal goes in."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from saassy.audit.service import email_hash
from saassy.context import AppContext
from tests.audit.support import HEADERS, USER_AGENT, action_counts, entries, table_text
from tests.conftest import CLIENT_IP, SignUp
from tests.email.mail import latest_magic_token
from tests.organizations.support import accept, create_organization, invite
from tests.quotas.conftest import make_staff
from tests.vault.support import put_secret

CANARY = "canary-7f3a9c1e-never-in-the-audit-log"


async def test_a_sign_in_and_a_failed_one_are_recorded_without_the_address(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup(password=CANARY)
    assert await entries(ctx) == []

    wrong = {"email": ada.email, "password": "not the password"}
    response = await client.post("/api/v1/auth/login", json=wrong, headers=HEADERS)
    assert response.status_code == 401
    [failed] = await entries(ctx, "auth.sign_in_failed")
    assert failed.actor_user_id is None
    assert failed.actor_api_key_id is None
    assert failed.organization_id is None
    assert (failed.target_type, str(failed.target_id)) == ("user", ada.user_id)
    assert (failed.ip, failed.user_agent) == (CLIENT_IP, USER_AGENT)
    assert failed.email_hash == email_hash(ctx.settings.signing_secret, ada.email)

    unknown = {"email": "nobody-here@example.com", "password": "whatever it is"}
    assert (await client.post("/api/v1/auth/login", json=unknown)).status_code == 401
    last = (await entries(ctx, "auth.sign_in_failed"))[-1]
    assert last.target_id is None
    assert last.email_hash == email_hash(ctx.settings.signing_secret, "nobody-here@example.com")

    right = {"email": ada.email, "password": CANARY}
    assert (await client.post("/api/v1/auth/login", json=right, headers=HEADERS)).is_success
    [signed_in] = await entries(ctx, "auth.signed_in")
    assert str(signed_in.actor_user_id) == ada.user_id
    assert (signed_in.ip, signed_in.user_agent) == (CLIENT_IP, USER_AGENT)
    assert signed_in.details == {"method": "password"}

    assert await action_counts(ctx) == {"auth.sign_in_failed": 2, "auth.signed_in": 1}
    stored = await table_text(ctx)
    for never in (CANARY, ada.email, "nobody-here@example.com", "nobody-here"):
        assert never not in stored


async def test_a_magic_link_sign_in_is_recorded_once(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    sent = await client.post("/api/v1/auth/magic-link", json={"email": ada.email})
    assert sent.status_code == 202
    token = await latest_magic_token(ctx, ada.email)
    response = await client.post(
        "/api/v1/auth/magic-link/verify", json={"token": token}, headers=HEADERS
    )
    assert response.status_code == 200, response.text
    [entry] = await entries(ctx)
    assert entry.action == "auth.signed_in"
    assert str(entry.actor_user_id) == ada.user_id
    assert entry.details == {"method": "magic_link"}
    assert token not in await table_text(ctx)


async def test_api_keys_created_and_revoked_once_each_never_the_key(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    headers = ada.headers | HEADERS
    created = await client.post("/api/v1/api-keys", json={"name": "ci"}, headers=headers)
    assert created.status_code == 201
    key_id, key = created.json()["id"], created.json()["key"]
    for _ in range(2):  # revoking twice is one revocation
        assert (await client.delete(f"/api/v1/api-keys/{key_id}", headers=headers)).is_success

    assert await action_counts(ctx) == {"api_key.created": 1, "api_key.revoked": 1}
    for entry in await entries(ctx):
        assert str(entry.actor_user_id) == ada.user_id
        assert entry.actor_api_key_id is None
        assert str(entry.organization_id) == ada.organization_id
        assert (entry.target_type, str(entry.target_id)) == ("api_key", key_id)
        assert (entry.ip, entry.user_agent) == (CLIENT_IP, USER_AGENT)
        assert entry.details == {"name": "ci"}
    stored = await table_text(ctx)
    assert key not in stored
    assert key[3:] not in stored


async def test_members_invited_role_changed_and_removed_once_each(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner, bob = await signup(), await signup()
    team = (await create_organization(client, owner))["id"]
    invitation, token = await invite(client, ctx, owner.headers | HEADERS, team, bob.email)
    assert (await accept(client, bob, token)).status_code == 200
    member_url = f"/api/v1/organizations/{team}/members/{bob.user_id}"
    headers = owner.headers | HEADERS
    for _ in range(2):  # the second asks for the role bob already has: nothing changes
        changed = await client.patch(member_url, json={"role": "admin"}, headers=headers)
        assert changed.status_code == 200
    assert (await client.delete(member_url, headers=headers)).status_code == 204

    assert await action_counts(ctx) == {
        "member.invited": 1,
        "member.role_changed": 1,
        "member.removed": 1,
    }
    invited, changed_role, removed = await entries(ctx)
    for entry in (invited, changed_role, removed):
        assert str(entry.actor_user_id) == owner.user_id
        assert str(entry.organization_id) == team
        assert (entry.ip, entry.user_agent) == (CLIENT_IP, USER_AGENT)
    assert (invited.target_type, str(invited.target_id)) == ("invitation", invitation["id"])
    assert invited.details == {"role": "member"}
    assert (changed_role.target_type, str(changed_role.target_id)) == ("user", bob.user_id)
    assert changed_role.details == {"from_role": "member", "to_role": "admin"}
    assert removed.details == {"role": "admin", "left": False}
    stored = await table_text(ctx)
    assert bob.email not in stored
    assert token not in stored


async def test_secrets_set_replaced_and_deleted_never_hold_the_value(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    headers = ada.headers | HEADERS
    assert (await put_secret(client, headers, "SMTP_PASSWORD", CANARY)).status_code == 201
    assert (await put_secret(client, headers, "SMTP_PASSWORD", CANARY + "-2")).status_code == 200
    assert (await client.delete("/api/v1/secrets/SMTP_PASSWORD", headers=headers)).is_success

    assert await action_counts(ctx) == {"secret.set": 2, "secret.deleted": 1}
    set_first, set_again, deleted = await entries(ctx)
    assert set_first.details == {"name": "SMTP_PASSWORD", "created": True}
    assert set_again.details == {"name": "SMTP_PASSWORD", "created": False}
    assert deleted.details == {"name": "SMTP_PASSWORD"}
    assert set_first.target_id == set_again.target_id == deleted.target_id
    for entry in (set_first, set_again, deleted):
        assert str(entry.actor_user_id) == ada.user_id
        assert str(entry.organization_id) == ada.organization_id
        assert (entry.ip, entry.user_agent) == (CLIENT_IP, USER_AGENT)
    assert "canary" not in (await table_text(ctx)).lower()


async def test_a_staff_plan_assignment_is_one_entry_with_the_staff_members_id(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    customer, staff = await signup(), await signup()
    await make_staff(ctx, staff.user_id)
    url = f"/api/v1/admin/organizations/{customer.organization_id}/plan"
    headers = staff.headers | HEADERS
    assert (await client.put(url, json={"plan": "pro"}, headers=headers)).is_success
    overrides = {"plan": "pro", "overrides": {"tasks_per_month": 50000}}
    assert (await client.put(url, json=overrides, headers=headers)).is_success
    assert (await client.put(url, json=overrides, headers=headers)).is_success  # no change

    changed, overridden = await entries(ctx)
    assert changed.action == "plan.changed"
    assert changed.details == {
        "from_plan": "free",
        "to_plan": "pro",
        "source": "staff",
        "overrides": [],
    }
    assert overridden.action == "plan.overrides_changed"
    assert overridden.details == {
        "plan": "pro",
        "from_overrides": [],
        "to_overrides": ["tasks_per_month"],
    }
    for entry in (changed, overridden):
        assert str(entry.actor_user_id) == staff.user_id
        assert entry.by_staff
        assert str(entry.organization_id) == customer.organization_id
        assert (entry.ip, entry.user_agent) == (CLIENT_IP, USER_AGENT)


@pytest.mark.parametrize("leaves", [True, False])
async def test_leaving_is_a_removal_by_oneself(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, leaves: bool
) -> None:
    owner, bob = await signup(), await signup()
    team = (await create_organization(client, owner))["id"]
    _, token = await invite(client, ctx, owner, team, bob.email)
    assert (await accept(client, bob, token)).status_code == 200
    who = bob if leaves else owner
    url = f"/api/v1/organizations/{team}/members/{bob.user_id}"
    assert (await client.delete(url, headers=who.headers)).status_code == 204
    [removed] = await entries(ctx, "member.removed")
    assert removed.actor_user_id == uuid.UUID(who.user_id)
    assert removed.details["left"] is leaves


async def test_the_same_change_asked_for_at_once_is_recorded_once(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    key = await client.post("/api/v1/api-keys", json={"name": "ci"}, headers=ada.headers)
    assert (await put_secret(client, ada.headers, "TOKEN", CANARY)).status_code == 201
    revokes = [
        client.delete(f"/api/v1/api-keys/{key.json()['id']}", headers=ada.headers) for _ in range(4)
    ]
    deletes = [client.delete("/api/v1/secrets/TOKEN", headers=ada.headers) for _ in range(4)]
    answers = await asyncio.gather(*revokes, *deletes)

    assert [a.status_code for a in answers[:4]] == [204] * 4  # revoking again is harmless
    assert sorted(a.status_code for a in answers[4:]) == [204, 404, 404, 404]
    counts = await action_counts(ctx)
    assert (counts["api_key.revoked"], counts["secret.deleted"]) == (1, 1)
