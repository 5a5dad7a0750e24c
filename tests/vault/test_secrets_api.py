"""`/api/v1/secrets`: values go in and never come out; admins write, members read names."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest

from saassy.context import AppContext
from saassy.vault import service as vault_service
from saassy.vault.service import open_secrets
from tests.conftest import Account, SignUp
from tests.organizations.support import add_member, bearer, create_api_key, create_organization
from tests.vault.support import SECRETS, put_secret, stored_items

VALUE = "sk-live-51HxQ-canary-value-never-returned"
METADATA = {"name", "created_at", "updated_at", "last_used_at"}


async def opened(ctx: AppContext, organization_id: str, *names: str) -> dict[str, str]:
    async with ctx.sessionmaker() as session:
        return await open_secrets(
            session, ctx.settings.vault_keyring, uuid.UUID(organization_id), names
        )


async def test_a_secret_is_stored_replaced_and_never_shown(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    created = await put_secret(client, owner.headers, "STRIPE_KEY", VALUE)
    assert created.status_code == 201, created.text
    assert set(created.json()) == METADATA
    assert created.json()["name"] == "STRIPE_KEY"

    shown = await client.get(f"{SECRETS}/STRIPE_KEY", headers=owner.headers)
    assert shown.status_code == 200
    assert shown.json() == created.json()
    listed = await client.get(SECRETS, headers=owner.headers)
    assert listed.json() == {"items": [created.json()], "next_cursor": None}

    replaced = await put_secret(client, owner.headers, "STRIPE_KEY", VALUE + "-2")
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["created_at"] == created.json()["created_at"]
    assert replaced.json()["updated_at"] >= created.json()["updated_at"]
    for response in (created, shown, listed, replaced):
        assert VALUE not in response.text
    assert await opened(ctx, owner.organization_id, "STRIPE_KEY") == {"STRIPE_KEY": VALUE + "-2"}
    [item] = await stored_items(ctx, owner.organization_id)
    assert VALUE.encode() not in item.sealed


async def test_a_deleted_secret_is_gone(client: httpx.AsyncClient, signup: SignUp) -> None:
    owner = await signup()
    assert (await put_secret(client, owner.headers, "TOKEN", VALUE)).status_code == 201
    deleted = await client.delete(f"{SECRETS}/TOKEN", headers=owner.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    for method in ("GET", "DELETE"):
        again = await client.request(method, f"{SECRETS}/TOKEN", headers=owner.headers)
        assert again.status_code == 404
        assert again.json()["error"] == {"code": "not_found", "message": "Secret not found."}
    assert (await client.get(SECRETS, headers=owner.headers)).json()["items"] == []


async def test_the_list_pages_oldest_first(client: httpx.AsyncClient, signup: SignUp) -> None:
    owner = await signup()
    for name in ("FIRST", "SECOND", "THIRD"):
        assert (await put_secret(client, owner.headers, name, VALUE)).status_code == 201
    first = (await client.get(SECRETS, params={"limit": 2}, headers=owner.headers)).json()
    assert [item["name"] for item in first["items"]] == ["FIRST", "SECOND"]
    assert first["next_cursor"]
    rest = await client.get(
        SECRETS, params={"limit": 2, "cursor": first["next_cursor"]}, headers=owner.headers
    )
    assert [item["name"] for item in rest.json()["items"]] == ["THIRD"]
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize(
    "name", ["1STARTS_WITH_DIGIT", "has-dash", "dotted.name", "A" * 65, "ÜMLAUT", "spa%20ce"]
)
async def test_a_bad_name_is_422_naming_it(
    client: httpx.AsyncClient, signup: SignUp, name: str
) -> None:
    owner = await signup()
    response = await put_secret(client, owner.headers, name, VALUE)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    assert response.json()["error"]["field"] == "name"
    assert (await client.get(f"{SECRETS}/{name}", headers=owner.headers)).status_code == 422


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"value": ""}, "must not be empty"),
        ({"value": f"{VALUE}\x00tail"}, "must not contain NUL"),
        ({"value": VALUE + "x" * (64 * 1024)}, "a secret may be at most 65536"),
        ({"value": VALUE + "é" * (32 * 1024)}, "a secret may be at most 65536"),
        ({"value": 12345}, "valid string"),
        ({"value": None}, "valid string"),
        ({"value": [VALUE]}, "valid string"),
        ({}, "Field required"),
    ],
)
async def test_a_bad_value_is_422_naming_it_without_repeating_it(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, body: dict[str, Any], problem: str
) -> None:
    owner = await signup()
    response = await client.put(f"{SECRETS}/TOKEN", json=body, headers=owner.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("validation_error", "value")
    assert problem in error["message"]
    assert VALUE not in response.text
    assert await stored_items(ctx, owner.organization_id) == []


async def test_a_lone_surrogate_is_refused(client: httpx.AsyncClient, signup: SignUp) -> None:
    owner = await signup()
    response = await client.put(
        f"{SECRETS}/TOKEN",
        content=b'{"value": "abc\\ud800"}',
        headers=owner.headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "value"


async def test_the_largest_value_is_stored_whole(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    largest = "é" * (32 * 1024)  # 64 KiB as UTF-8
    assert (await put_secret(client, owner.headers, "BIG", largest)).status_code == 201
    assert await opened(ctx, owner.organization_id, "BIG") == {"BIG": largest}


async def test_members_and_api_keys_read_names_but_only_admins_write(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    org = (await create_organization(client, owner, "Secretive"))["id"]
    member = await add_member(client, ctx, signup, owner, org, "member")
    admin = await add_member(client, ctx, signup, owner, org, "admin")
    key = bearer((await create_api_key(client, owner, org))["key"])
    in_org = {"Saassy-Organization": org}
    assert (await put_secret(client, admin.headers, "BY_ADMIN", VALUE, org)).status_code == 201

    readers: list[dict[str, str]] = [member.headers | in_org, key]
    for headers in readers:
        listed = await client.get(SECRETS, headers=headers)
        assert [item["name"] for item in listed.json()["items"]] == ["BY_ADMIN"]
        assert (await client.get(f"{SECRETS}/BY_ADMIN", headers=headers)).status_code == 200
        for response in (
            await client.put(f"{SECRETS}/BY_ADMIN", json={"value": "x"}, headers=headers),
            await client.put(f"{SECRETS}/NEW", json={"value": "x"}, headers=headers),
            await client.delete(f"{SECRETS}/BY_ADMIN", headers=headers),
        ):
            assert response.status_code == 403, response.text
            assert response.json()["error"]["code"] == "role_required"
    assert await opened(ctx, org, "BY_ADMIN") == {"BY_ADMIN": VALUE}
    assert [item.name for item in await stored_items(ctx, org)] == ["BY_ADMIN"]

    deleted = await client.delete(f"{SECRETS}/BY_ADMIN", headers=owner.headers | in_org)
    assert deleted.status_code == 204


async def test_the_same_name_in_two_organizations_is_two_secrets(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner: Account = await signup()
    team = (await create_organization(client, owner, "Team"))["id"]
    personal = owner.organization_id
    assert (await put_secret(client, owner.headers, "TOKEN", "personal-value")).status_code == 201
    missing = await client.get(
        f"{SECRETS}/TOKEN", headers=owner.headers | {"Saassy-Organization": team}
    )
    assert missing.status_code == 404
    assert (await put_secret(client, owner.headers, "TOKEN", "team-value", team)).status_code == 201
    assert await opened(ctx, personal, "TOKEN") == {"TOKEN": "personal-value"}
    assert await opened(ctx, team, "TOKEN") == {"TOKEN": "team-value"}


async def test_the_openapi_schema_has_no_way_to_read_a_value(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/api/openapi.json")).json()
    secret_paths = {path: ops for path, ops in schema["paths"].items() if "/secrets" in path}
    assert set(secret_paths) == {SECRETS, SECRETS + "/{name}"}
    answers = json.dumps(
        [op["responses"].get(code) for ops in secret_paths.values() for op in ops.values()
         for code in ("200", "201")]
    )  # fmt: skip
    answered = set(re.findall(r"#/components/schemas/([\w\-]+)", answers))
    assert answered == {"SecretOut", "Page_SecretOut_"}
    assert set(schema["components"]["schemas"]["SecretOut"]["properties"]) == METADATA


async def test_an_organization_holds_at_most_a_hundred_secrets(
    client: httpx.AsyncClient, signup: SignUp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vault_service, "MAX_SECRETS_PER_ORGANIZATION", 3)
    owner = await signup()
    for name in ("A", "B", "C"):
        stored = await client.put(
            f"/api/v1/secrets/{name}", headers=owner.headers, json={"value": "v"}
        )
        assert stored.status_code == 201
    refused = await client.put("/api/v1/secrets/D", headers=owner.headers, json={"value": "v"})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "secret_limit_reached"
    assert refused.json()["error"]["field"] == "name"
    replaced = await client.put("/api/v1/secrets/A", headers=owner.headers, json={"value": "w"})
    assert replaced.status_code == 200  # replacing one is not adding one
    listed = await client.get("/api/v1/secrets", headers=owner.headers)
    assert [item["name"] for item in listed.json()["items"]] == ["A", "B", "C"]
