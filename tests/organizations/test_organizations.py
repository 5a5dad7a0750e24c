from __future__ import annotations

import httpx

from saassy.context import AppContext
from tests.conftest import SignUp
from tests.organizations.support import (
    accept,
    add_member,
    bearer,
    create_api_key,
    create_organization,
    invite,
)


async def test_create_makes_the_caller_owner_on_the_default_plan(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    created = await create_organization(client, ada, "  Acme Robotics  ")
    assert created["name"] == "Acme Robotics"
    assert created["plan"] == "free"
    assert created["role"] == "owner"
    assert created["personal"] is False

    fetched = await client.get(f"/api/v1/organizations/{created['id']}", headers=ada.headers)
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_list_shows_my_organizations_with_my_role_oldest_first(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada, bob = await signup(), await signup()
    acme = await create_organization(client, ada, "Acme")
    await add_member(client, ctx, signup, ada, acme["id"])
    bobs = await create_organization(client, bob, "Bob's shop")
    await client.post(
        f"/api/v1/organizations/{bobs['id']}/invitations",
        json={"email": ada.email, "role": "admin"},
        headers=bob.headers,
    )

    response = await client.get("/api/v1/organizations", headers=ada.headers)
    assert response.status_code == 200
    body = response.json()
    assert [(o["id"], o["role"], o["personal"]) for o in body["items"]] == [
        (ada.organization_id, "owner", True),
        (acme["id"], "owner", False),
    ]
    assert body["next_cursor"] is None


async def test_list_pages_with_a_cursor(client: httpx.AsyncClient, signup: SignUp) -> None:
    ada = await signup()
    ids = [ada.organization_id] + [
        (await create_organization(client, ada, f"Org {n}"))["id"] for n in range(4)
    ]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = await client.get("/api/v1/organizations", params=params, headers=ada.headers)
        page = response.json()
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids


async def test_a_bad_cursor_or_limit_is_refused_naming_the_field(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    for params, field, status in (
        ({"cursor": "not-a-cursor"}, "cursor", 400),
        ({"limit": "0"}, "limit", 422),
    ):
        response = await client.get("/api/v1/organizations", params=params, headers=ada.headers)
        assert response.status_code == status, response.text
        assert response.json()["error"]["field"] == field


async def test_names_are_validated(client: httpx.AsyncClient, signup: SignUp) -> None:
    ada = await signup()
    for name in ("", "   ", "x" * 121, "Evil\r\nBcc: victim@example.com", 42):
        response = await client.post(
            "/api/v1/organizations", json={"name": name}, headers=ada.headers
        )
        assert response.status_code == 422, (name, response.text)
        assert response.json()["error"]["field"] == "name"


async def test_admin_renames_member_cannot(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    admin = await add_member(client, ctx, signup, owner, org["id"], "admin")
    member = await add_member(client, ctx, signup, owner, org["id"], "member")
    url = f"/api/v1/organizations/{org['id']}"

    renamed = await client.patch(url, json={"name": "Acme 2"}, headers=admin.headers)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Acme 2"
    assert renamed.json()["role"] == "admin"

    refused = await client.patch(url, json={"name": "Mine now"}, headers=member.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "role_required"
    assert (await client.get(url, headers=member.headers)).json()["name"] == "Acme 2"


async def test_only_an_owner_deletes_and_the_organization_is_gone(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    admin = await add_member(client, ctx, signup, owner, org["id"], "admin")
    key = await create_api_key(client, owner, org["id"])
    url = f"/api/v1/organizations/{org['id']}"

    refused = await client.delete(url, headers=admin.headers)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "owner_required"

    assert (await client.delete(url, headers=owner.headers)).status_code == 204
    assert (await client.get(url, headers=owner.headers)).status_code == 404
    assert (await client.delete(url, headers=owner.headers)).status_code == 404
    listed = (await client.get("/api/v1/organizations", headers=admin.headers)).json()
    assert org["id"] not in {o["id"] for o in listed["items"]}
    # The deleted organization's API keys stop working at once.
    refused_key = await client.get("/api/v1/organizations", headers=bearer(key["key"]))
    assert refused_key.status_code == 401


async def test_a_personal_organization_cannot_be_deleted(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    response = await client.delete(
        f"/api/v1/organizations/{ada.organization_id}", headers=ada.headers
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "personal_organization"
    assert (
        await client.get(f"/api/v1/organizations/{ada.organization_id}", headers=ada.headers)
    ).status_code == 200


async def test_an_api_key_reads_its_organization_but_cannot_create_one(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    org = await create_organization(client, ada)
    key = bearer((await create_api_key(client, ada, org["id"]))["key"])

    listed = (await client.get("/api/v1/organizations", headers=key)).json()
    assert [(o["id"], o["role"]) for o in listed["items"]] == [(org["id"], "member")]
    created = await client.post("/api/v1/organizations", json={"name": "x"}, headers=key)
    assert created.status_code == 403
    assert created.json()["error"]["code"] == "user_required"
    renamed = await client.patch(
        f"/api/v1/organizations/{org['id']}", json={"name": "x"}, headers=key
    )
    assert renamed.status_code == 403


async def test_an_unknown_or_malformed_id_is_404_or_422(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    missing = await client.get(
        "/api/v1/organizations/00000000-0000-4000-8000-000000000000", headers=ada.headers
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    malformed = await client.get("/api/v1/organizations/not-a-uuid", headers=ada.headers)
    assert malformed.status_code == 422
    assert malformed.json()["error"]["field"] == "organization_id"


async def test_anonymous_callers_are_401(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v1/organizations")).status_code == 401
    assert (await client.post("/api/v1/organizations", json={"name": "x"})).status_code == 401


async def test_me_lists_my_live_organizations_with_my_role_in_the_order_i_joined(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada, bob = await signup(), await signup()
    bobs = await create_organization(client, bob, "Bob's shop")
    acme = await create_organization(client, ada, "Acme")
    closed = await create_organization(client, ada, "Closed")
    _, token = await invite(client, ctx, bob, bobs["id"], ada.email, "admin")
    assert (await accept(client, ada, token)).status_code == 200
    deleted = await client.delete(f"/api/v1/organizations/{closed['id']}", headers=ada.headers)
    assert deleted.status_code == 204

    me = await client.get("/api/v1/me", headers=ada.headers)
    assert me.status_code == 200
    listed = me.json()["organizations"]
    assert [(m["organization"]["id"], m["role"]) for m in listed] == [
        (ada.organization_id, "owner"),
        (acme["id"], "owner"),
        (bobs["id"], "admin"),
    ]
    assert [m["organization"]["name"] for m in listed[1:]] == ["Acme", "Bob's shop"]
