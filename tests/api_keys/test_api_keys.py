from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from saassy.context import AppContext
from saassy.kit.security import token_digest
from saassy.kit.time import utcnow
from saassy.models import ApiKey
from tests.conftest import SignUp
from tests.organizations.support import add_member, bearer, create_api_key, create_organization

KEY_FORMAT = re.compile(r"^sk_[A-Za-z0-9_\-]{43,}$")


async def test_a_new_key_is_shown_once_and_stored_as_a_digest(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    created = await create_api_key(client, ada, name="  CI deploys ")

    assert set(created) == {"id", "name", "prefix", "key", "scopes", "expires_at", "created_at"}
    assert (created["scopes"], created["expires_at"]) == (["admin"], None)
    assert created["name"] == "CI deploys"
    assert KEY_FORMAT.match(created["key"]), created["key"]
    assert created["key"].startswith(created["prefix"])
    assert len(created["prefix"]) == 12

    listed = await client.get("/api/v1/api-keys", headers=ada.headers)
    assert listed.status_code == 200
    assert listed.json()["items"] == [
        {
            "id": created["id"],
            "name": "CI deploys",
            "prefix": created["prefix"],
            "scopes": ["admin"],
            "created_at": created["created_at"],
            "expires_at": None,
            "rotated_at": None,
            "replaced_by_id": None,
            "last_used_at": None,
            "revoked_at": None,
        }
    ]
    assert created["key"] not in listed.text
    async with ctx.sessionmaker() as session:
        stored = (await session.scalars(select(ApiKey))).one()
    assert stored.key_hash == token_digest(created["key"])
    assert str(stored.organization_id) == ada.organization_id


async def test_two_keys_differ(client: httpx.AsyncClient, signup: SignUp) -> None:
    ada = await signup()
    first, second = await create_api_key(client, ada), await create_api_key(client, ada)
    assert first["key"] != second["key"]
    assert first["prefix"] != second["prefix"]


async def test_a_key_authenticates_and_records_when_it_was_last_used(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    created = await create_api_key(client, ada)

    response = await client.get(
        f"/api/v1/organizations/{ada.organization_id}", headers=bearer(created["key"])
    )
    assert response.status_code == 200, response.text
    assert response.json()["id"] == ada.organization_id
    listed = (await client.get("/api/v1/api-keys", headers=ada.headers)).json()["items"]
    assert listed[0]["last_used_at"] is not None


async def test_last_used_is_written_at_most_once_a_minute(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    created = await create_api_key(client, ada)
    long_ago, recently = utcnow() - timedelta(hours=1), utcnow() - timedelta(seconds=5)

    async def used_at_after_a_call(last_used: object) -> object:
        async with ctx.sessionmaker() as session, session.begin():
            await session.execute(update(ApiKey).values(last_used_at=last_used))
        ctx.key_cache.clear()  # read anew, as the next process to see the key would
        await client.get("/api/v1/organizations", headers=bearer(created["key"]))
        async with ctx.sessionmaker() as session:
            return (await session.scalars(select(ApiKey.last_used_at))).one()

    assert await used_at_after_a_call(recently) == recently
    assert await used_at_after_a_call(long_ago) != long_ago


async def test_a_revoked_key_fails_on_the_very_next_request(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    kept, revoked = await create_api_key(client, ada), await create_api_key(client, ada)
    assert (await client.get("/api/v1/organizations", headers=bearer(revoked["key"]))).is_success

    response = await client.delete(f"/api/v1/api-keys/{revoked['id']}", headers=ada.headers)
    assert response.status_code == 204
    refused = await client.get("/api/v1/organizations", headers=bearer(revoked["key"]))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "invalid_api_key"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.get("/api/v1/organizations", headers=bearer(kept["key"]))).is_success

    listed = (await client.get("/api/v1/api-keys", headers=ada.headers)).json()["items"]
    assert {k["id"]: k["revoked_at"] is not None for k in listed} == {
        kept["id"]: False,
        revoked["id"]: True,
    }
    again = await client.delete(f"/api/v1/api-keys/{revoked['id']}", headers=ada.headers)
    assert again.status_code == 204


async def test_a_made_up_or_altered_key_is_401(client: httpx.AsyncClient, signup: SignUp) -> None:
    ada = await signup()
    real = (await create_api_key(client, ada))["key"]
    for key in ("sk_" + "A" * 43, real[:-1] + ("A" if real[-1] != "A" else "B"), real.upper()):
        response = await client.get("/api/v1/organizations", headers=bearer(key))
        assert response.status_code == 401, key


async def test_an_api_key_cannot_manage_keys(client: httpx.AsyncClient, signup: SignUp) -> None:
    ada = await signup()
    created = await create_api_key(client, ada)
    key = bearer(created["key"])
    for method, url, body in (
        ("GET", "/api/v1/api-keys", None),
        ("POST", "/api/v1/api-keys", {"name": "escalate"}),
        ("DELETE", f"/api/v1/api-keys/{created['id']}", None),
        ("POST", f"/api/v1/api-keys/{created['id']}/rotate", None),
    ):
        response = await client.request(method, url, json=body, headers=key)
        assert response.status_code == 403, (method, response.text)
        assert response.json()["error"]["code"] == "user_required"
    listed = (await client.get("/api/v1/api-keys", headers=ada.headers)).json()["items"]
    assert [(k["id"], k["revoked_at"]) for k in listed] == [(created["id"], None)]


async def test_keys_belong_to_the_organization_the_header_selects(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    team_key = await create_api_key(client, owner, org["id"], name="team")
    personal_key = await create_api_key(client, owner, name="personal")

    team = await client.get(
        "/api/v1/api-keys", headers=owner.headers | {"Saassy-Organization": org["id"]}
    )
    assert [k["id"] for k in team.json()["items"]] == [team_key["id"]]
    personal = await client.get("/api/v1/api-keys", headers=owner.headers)
    assert [k["id"] for k in personal.json()["items"]] == [personal_key["id"]]
    # A key is revoked through the organization it belongs to only.
    wrong_org = await client.delete(f"/api/v1/api-keys/{team_key['id']}", headers=owner.headers)
    assert wrong_org.status_code == 404
    seen = await client.get("/api/v1/organizations", headers=bearer(team_key["key"]))
    assert [o["id"] for o in seen.json()["items"]] == [org["id"]]


async def test_members_cannot_manage_keys_admins_can(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = await create_organization(client, owner)
    member = await add_member(client, ctx, signup, owner, org["id"])
    admin = await add_member(client, ctx, signup, owner, org["id"], "admin")
    in_org = {"Saassy-Organization": org["id"]}

    refused = await client.post(
        "/api/v1/api-keys", json={"name": "x"}, headers=member.headers | in_org
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "role_required"
    assert (await client.get("/api/v1/api-keys", headers=member.headers | in_org)).status_code == (
        403
    )
    created = await create_api_key(client, admin, org["id"])
    revoked = await client.delete(
        f"/api/v1/api-keys/{created['id']}", headers=owner.headers | in_org
    )
    assert revoked.status_code == 204


async def test_keys_page_with_a_cursor(client: httpx.AsyncClient, signup: SignUp) -> None:
    ada = await signup()
    made = [(await create_api_key(client, ada, name=f"k{n}"))["id"] for n in range(3)]
    first = await client.get("/api/v1/api-keys", params={"limit": 2}, headers=ada.headers)
    rest = await client.get(
        "/api/v1/api-keys",
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=ada.headers,
    )
    assert [k["id"] for k in first.json()["items"] + rest.json()["items"]] == made
    assert rest.json()["next_cursor"] is None


async def test_key_names_are_validated(client: httpx.AsyncClient, signup: SignUp) -> None:
    ada = await signup()
    for body in ({}, {"name": ""}, {"name": "x" * 101}, {"name": "a\nb"}, {"name": ["x"]}):
        response = await client.post("/api/v1/api-keys", json=body, headers=ada.headers)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["field"] == "name"
