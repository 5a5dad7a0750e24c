from __future__ import annotations

import asyncio

import httpx

from saassy.context import AppContext
from tests.conftest import Account, SignUp
from tests.organizations.support import add_member, create_organization


def members_url(org_id: str, user_id: str | None = None) -> str:
    base = f"/api/v1/organizations/{org_id}/members"
    return f"{base}/{user_id}" if user_id else base


async def roles(client: httpx.AsyncClient, org_id: str, viewer: Account) -> dict[str, str]:
    response = await client.get(members_url(org_id), headers=viewer.headers)
    assert response.status_code == 200, response.text
    return {m["user_id"]: m["role"] for m in response.json()["items"]}


async def test_members_list_shows_email_role_and_join_time(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    member = await add_member(client, ctx, signup, owner, org["id"])

    response = await client.get(members_url(org["id"]), headers=member.headers)
    assert response.status_code == 200
    body = response.json()
    assert [(m["user_id"], m["email"], m["role"]) for m in body["items"]] == [
        (owner.user_id, owner.email, "owner"),
        (member.user_id, member.email, "member"),
    ]
    assert set(body["items"][0]) == {"id", "user_id", "email", "role", "joined_at"}
    assert body["next_cursor"] is None

    first = await client.get(members_url(org["id"]), params={"limit": 1}, headers=owner.headers)
    rest = await client.get(
        members_url(org["id"]),
        params={"limit": 1, "cursor": first.json()["next_cursor"]},
        headers=owner.headers,
    )
    assert [m["user_id"] for m in rest.json()["items"]] == [member.user_id]


async def test_admin_promotes_and_demotes_members_but_never_to_owner(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    admin = await add_member(client, ctx, signup, owner, org["id"], "admin")
    member = await add_member(client, ctx, signup, owner, org["id"])

    promoted = await client.patch(
        members_url(org["id"], member.user_id), json={"role": "admin"}, headers=admin.headers
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "admin"
    assert promoted.json()["email"] == member.email

    for target, role in ((member, "owner"), (owner, "member")):
        refused = await client.patch(
            members_url(org["id"], target.user_id), json={"role": role}, headers=admin.headers
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "owner_required"
    assert await roles(client, org["id"], owner) == {
        owner.user_id: "owner",
        admin.user_id: "admin",
        member.user_id: "admin",
    }


async def test_a_member_cannot_change_roles(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    member = await add_member(client, ctx, signup, owner, org["id"])
    response = await client.patch(
        members_url(org["id"], member.user_id), json={"role": "admin"}, headers=member.headers
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "role_required"


async def test_an_unknown_role_is_a_422_naming_the_field(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    response = await client.patch(
        members_url(owner.organization_id, owner.user_id),
        json={"role": "god"},
        headers=owner.headers,
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "role"


async def test_the_last_owner_can_be_neither_demoted_nor_removed(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    second = await add_member(client, ctx, signup, owner, org["id"], "owner")

    demoted = await client.patch(
        members_url(org["id"], second.user_id), json={"role": "admin"}, headers=owner.headers
    )
    assert demoted.status_code == 200
    for call in (
        client.patch(
            members_url(org["id"], owner.user_id), json={"role": "admin"}, headers=owner.headers
        ),
        client.delete(members_url(org["id"], owner.user_id), headers=owner.headers),
    ):
        response = await call
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "last_owner"
    assert (await roles(client, org["id"], owner))[owner.user_id] == "owner"


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    first = await signup()
    org = await create_organization(client, first)
    second = await add_member(client, ctx, signup, first, org["id"], "owner")

    answers = await asyncio.gather(
        client.patch(
            members_url(org["id"], second.user_id), json={"role": "member"}, headers=first.headers
        ),
        client.patch(
            members_url(org["id"], first.user_id), json={"role": "member"}, headers=second.headers
        ),
    )
    # The loser is refused either as no longer an owner (403) or as the last owner (409).
    assert sorted(a.status_code for a in answers) in ([200, 403], [200, 409])
    assert list((await roles(client, org["id"], first)).values()).count("owner") == 1


async def test_members_leave_admins_remove_and_only_owners_remove_owners(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    admin = await add_member(client, ctx, signup, owner, org["id"], "admin")
    leaver = await add_member(client, ctx, signup, owner, org["id"])
    removed = await add_member(client, ctx, signup, owner, org["id"])

    left = await client.delete(members_url(org["id"], leaver.user_id), headers=leaver.headers)
    assert left.status_code == 204
    assert (
        await client.get(f"/api/v1/organizations/{org['id']}", headers=leaver.headers)
    ).status_code == 404

    refused = await client.delete(members_url(org["id"], admin.user_id), headers=removed.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "role_required"
    kicked = await client.delete(members_url(org["id"], removed.user_id), headers=admin.headers)
    assert kicked.status_code == 204
    not_owner = await client.delete(members_url(org["id"], owner.user_id), headers=admin.headers)
    assert not_owner.status_code == 403
    assert not_owner.json()["error"]["code"] == "owner_required"

    assert await roles(client, org["id"], owner) == {
        owner.user_id: "owner",
        admin.user_id: "admin",
    }
    gone = await client.delete(members_url(org["id"], removed.user_id), headers=owner.headers)
    assert gone.status_code == 404
