from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from saassy.context import AppContext
from saassy.kit.security import token_digest
from saassy.kit.time import utcnow
from saassy.models import Invitation
from tests.conftest import SignUp
from tests.organizations.support import (
    accept,
    add_member,
    create_organization,
    invite,
    last_email_to,
)


def invitations_url(org_id: str, invitation_id: str | None = None) -> str:
    base = f"/api/v1/organizations/{org_id}/invitations"
    return f"{base}/{invitation_id}" if invitation_id else base


async def test_invitation_e_mails_a_link_and_stores_only_a_digest(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner, "Acme Robotics")
    before = utcnow()
    invitation, token = await invite(client, ctx, owner, org["id"], "New.Hire@Example.com", "admin")

    assert invitation["email"] == "new.hire@example.com"
    assert invitation["role"] == "admin"
    assert invitation["invited_by_user_id"] == owner.user_id
    assert "token" not in invitation
    subject, body = await last_email_to(ctx, "new.hire@example.com")
    assert "Acme Robotics" in subject
    assert f"{ctx.settings.base_url}/invitations/accept?token={token}" in body
    assert owner.email in body
    assert len(token) >= 40
    async with ctx.sessionmaker() as session:
        stored = (await session.scalars(select(Invitation))).one()
    assert stored.token_hash == token_digest(token)
    ttl = ctx.settings.invitation_ttl
    assert before + ttl <= stored.expires_at <= utcnow() + ttl


async def test_accepting_joins_the_organization_with_the_invited_role(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    newcomer = await signup("newcomer@example.com")
    _, token = await invite(client, ctx, owner, org["id"], "NEWCOMER@example.com", "admin")

    response = await accept(client, newcomer, token)
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "admin"
    assert response.json()["organization"]["id"] == org["id"]
    assert response.json()["organization"]["name"] == org["name"]
    fetched = await client.get(f"/api/v1/organizations/{org['id']}", headers=newcomer.headers)
    assert fetched.json()["role"] == "admin"
    pending = await client.get(invitations_url(org["id"]), headers=owner.headers)
    assert pending.json()["items"] == []

    again = await accept(client, newcomer, token)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "invitation_used"


async def test_only_the_invited_address_may_accept(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    intruder = await signup()
    _, token = await invite(client, ctx, owner, org["id"], "someone@example.com")

    response = await accept(client, intruder, token)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invitation_email_mismatch"
    assert org["name"] not in response.text
    assert (
        await client.get(f"/api/v1/organizations/{org['id']}", headers=intruder.headers)
    ).status_code == 404


async def test_an_unknown_token_is_404(client: httpx.AsyncClient, signup: SignUp) -> None:
    ada = await signup()
    response = await accept(client, ada, "no-such-token")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "invitation_not_found"


async def test_expired_and_revoked_invitations_cannot_be_accepted(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    late, revoked_for = await signup(), await signup()
    _, late_token = await invite(client, ctx, owner, org["id"], late.email)
    invitation, revoked_token = await invite(client, ctx, owner, org["id"], revoked_for.email)
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Invitation)
            .where(Invitation.token_hash == token_digest(late_token))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    revoked = await client.delete(
        invitations_url(org["id"], invitation["id"]), headers=owner.headers
    )
    assert revoked.status_code == 204
    pending = (await client.get(invitations_url(org["id"]), headers=owner.headers)).json()
    assert pending["items"] == []

    for account, token, code in (
        (late, late_token, "invitation_expired"),
        (revoked_for, revoked_token, "invitation_revoked"),
    ):
        response = await accept(client, account, token)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["field"] == "token"


async def test_admins_invite_up_to_their_own_role_members_not_at_all(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    admin = await add_member(client, ctx, signup, owner, org["id"], "admin")
    member = await add_member(client, ctx, signup, owner, org["id"])

    too_high = await client.post(
        invitations_url(org["id"]),
        json={"email": "boss@example.com", "role": "owner"},
        headers=admin.headers,
    )
    assert too_high.status_code == 403
    assert too_high.json()["error"] | {"message": ""} == {
        "code": "role_too_high",
        "field": "role",
        "message": "",
    }
    refused = await client.post(
        invitations_url(org["id"]), json={"email": "x@example.com"}, headers=member.headers
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "role_required"
    listed = await client.get(invitations_url(org["id"]), headers=member.headers)
    assert listed.status_code == 403

    await invite(client, ctx, admin, org["id"], "peer@example.com", "admin")
    await invite(client, ctx, owner, org["id"], "co-owner@example.com", "owner")


async def test_inviting_a_member_is_a_conflict(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    member = await add_member(client, ctx, signup, owner, org["id"])
    response = await client.post(
        invitations_url(org["id"]), json={"email": member.email.upper()}, headers=owner.headers
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "already_member"
    assert response.json()["error"]["field"] == "email"


async def test_inviting_again_replaces_the_pending_invitation(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    guest = await signup()
    _, first_token = await invite(client, ctx, owner, org["id"], guest.email)
    second, second_token = await invite(client, ctx, owner, org["id"], guest.email, "admin")

    pending = (await client.get(invitations_url(org["id"]), headers=owner.headers)).json()
    assert [i["id"] for i in pending["items"]] == [second["id"]]
    assert (await accept(client, guest, first_token)).json()["error"]["code"] == (
        "invitation_revoked"
    )
    assert (await accept(client, guest, second_token)).json()["role"] == "admin"


async def test_pending_invitations_page_and_revoke_is_idempotent(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    made = [(await invite(client, ctx, owner, org["id"], f"p{n}@example.com"))[0] for n in range(3)]

    first = await client.get(invitations_url(org["id"]), params={"limit": 2}, headers=owner.headers)
    rest = await client.get(
        invitations_url(org["id"]),
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=owner.headers,
    )
    listed = first.json()["items"] + rest.json()["items"]
    assert [i["id"] for i in listed] == [i["id"] for i in made]
    assert rest.json()["next_cursor"] is None

    url = invitations_url(org["id"], made[0]["id"])
    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert (await client.delete(url, headers=owner.headers)).status_code == 204


async def test_a_bad_invitation_body_is_a_422_naming_the_field(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    for body, field in (
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@example.com", "role": "king"}, "role"),
        ({}, "email"),
    ):
        response = await client.post(
            invitations_url(owner.organization_id), json=body, headers=owner.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field


async def test_one_token_accepted_twice_at_once_joins_once(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    guest = await signup()
    _, token = await invite(client, ctx, owner, org["id"], guest.email)

    answers = await asyncio.gather(*(accept(client, guest, token) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409]
    members = await client.get(f"/api/v1/organizations/{org['id']}/members", headers=owner.headers)
    assert [m["user_id"] for m in members.json()["items"]].count(guest.user_id) == 1
