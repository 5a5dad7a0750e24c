"""Rotation: a new key, the old one working for the overlap and refused after it, once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import ApiKey
from tests.audit.support import entries
from tests.conftest import Account, SignUp
from tests.organizations.support import bearer, create_api_key, create_organization

ORGS = "/api/v1/organizations"


async def rotate(
    client: httpx.AsyncClient, account: Account, key_id: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/api/v1/api-keys/{key_id}/rotate", json=body or None, headers=account.headers
    )


async def end_overlap(ctx: AppContext, key_id: str) -> None:
    """Move the old key's end of overlap into the past, as if the overlap had run out."""
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(key_id))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    # Remembered with its real end, which the clock would reach; this moves the end instead.
    ctx.key_cache.clear()


async def test_the_old_key_works_during_the_overlap_and_is_refused_after_it(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    old = await create_api_key(client, ada, name="deploys")
    before = utcnow()

    response = await rotate(client, ada, old["id"])
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["id"] != old["id"]
    assert new["key"] != old["key"]
    assert new["key"].startswith(new["prefix"])
    assert (new["name"], new["scopes"], new["expires_at"]) == ("deploys", ["admin"], None)
    replaced = new["replaces"]
    assert replaced["id"] == old["id"]
    assert replaced["replaced_by_id"] == new["id"]
    ends = datetime.fromisoformat(replaced["expires_at"])
    assert before + timedelta(hours=24) <= ends <= utcnow() + timedelta(hours=24)

    for key in (old["key"], new["key"]):
        assert (await client.get(ORGS, headers=bearer(key))).status_code == 200
    listed = (await client.get("/api/v1/api-keys", headers=ada.headers)).json()["items"]
    assert new["key"] not in str(listed)
    assert [(k["id"], k["replaced_by_id"], k["revoked_at"]) for k in listed] == [
        (old["id"], new["id"], None),
        (new["id"], None, None),
    ]

    await end_overlap(ctx, old["id"])
    refused = await client.get(ORGS, headers=bearer(old["key"]))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_expired"
    assert "rotated" in refused.json()["error"]["message"]
    assert (await client.get(ORGS, headers=bearer(new["key"]))).status_code == 200


async def test_an_overlap_of_zero_stops_the_old_key_at_once(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    old = await create_api_key(client, ada)
    new = (await rotate(client, ada, old["id"], overlap_s=0)).json()
    assert (await client.get(ORGS, headers=bearer(old["key"]))).status_code == 401
    assert (await client.get(ORGS, headers=bearer(new["key"]))).status_code == 200


async def test_a_few_seconds_of_overlap_then_refused(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    old = await create_api_key(client, ada)
    assert (await rotate(client, ada, old["id"], overlap_s=1)).status_code == 201
    assert (await client.get(ORGS, headers=bearer(old["key"]))).status_code == 200
    await asyncio.sleep(1.1)
    assert (await client.get(ORGS, headers=bearer(old["key"]))).status_code == 401


async def test_the_new_key_keeps_scopes_and_the_lifetime_of_an_expiring_key(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    expires = (utcnow() + timedelta(days=90)).isoformat()
    created = await client.post(
        "/api/v1/api-keys",
        json={"name": "reader", "scopes": ["read"], "expires_at": expires},
        headers=ada.headers,
    )
    old = created.json()
    new = (await rotate(client, ada, old["id"], overlap_s=3600)).json()
    assert new["scopes"] == ["read"]
    lifetime = datetime.fromisoformat(new["expires_at"]) - datetime.fromisoformat(new["created_at"])
    assert abs(lifetime - timedelta(days=90)) < timedelta(seconds=5)
    # The old key's end is the sooner of its expiry and the end of the overlap.
    old_end = datetime.fromisoformat(new["replaces"]["expires_at"])
    assert old_end <= utcnow() + timedelta(hours=1)


async def test_one_rotation_writes_exactly_one_entry_and_a_second_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    old = await create_api_key(client, ada, name="ci")
    first, second = await asyncio.gather(
        rotate(client, ada, old["id"], overlap_s=60), rotate(client, ada, old["id"])
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [201, 409], (first.text, second.text)
    refusal = first if first.status_code == 409 else second
    assert refusal.json()["error"]["code"] == "api_key_already_rotated"
    new = (first if first.status_code == 201 else second).json()

    [entry] = await entries(ctx, "api_key.rotated")
    assert (entry.target_type, str(entry.target_id)) == ("api_key", old["id"])
    assert str(entry.actor_user_id) == ada.user_id
    assert str(entry.organization_id) == ada.organization_id
    assert entry.details["name"] == "ci"
    assert entry.details["replaced_by"] == new["id"]
    assert [e.action for e in await entries(ctx) if e.action.startswith("api_key.")] == [
        "api_key.created",
        "api_key.rotated",
    ]
    # The new key rotates in turn: one more entry.
    assert (await rotate(client, ada, new["id"])).status_code == 201
    assert len(await entries(ctx, "api_key.rotated")) == 2


async def test_revoked_or_expired_keys_are_not_rotated(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    revoked, expired = await create_api_key(client, ada), await create_api_key(client, ada)
    await client.delete(f"/api/v1/api-keys/{revoked['id']}", headers=ada.headers)
    await end_overlap(ctx, expired["id"])
    for key in (revoked, expired):
        response = await rotate(client, ada, key["id"])
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "api_key_not_active"
    assert await entries(ctx, "api_key.rotated") == []


async def test_another_organizations_key_is_not_found(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada, bob = await signup(), await signup()
    adas = await create_api_key(client, ada)
    team = await create_organization(client, ada)
    team_key = await create_api_key(client, ada, team["id"])

    assert (await rotate(client, bob, adas["id"])).status_code == 404
    # A key is rotated through its own organization only, even by its owner.
    assert (await rotate(client, ada, team_key["id"])).status_code == 404
    assert (await rotate(client, ada, str(uuid.uuid4()))).status_code == 404
    assert await entries(ctx, "api_key.rotated") == []
    async with ctx.sessionmaker() as session:
        assert (await session.scalars(select(ApiKey.rotated_at))).all() == [None, None]


async def test_overlap_is_bounded_and_keys_cannot_rotate_keys(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    key = await create_api_key(client, ada)
    for overlap in (-1, 30 * 86400 + 1, "a day"):
        response = await rotate(client, ada, key["id"], overlap_s=overlap)
        assert response.status_code == 422, overlap
        assert response.json()["error"]["field"] == "overlap_s"
    by_key = await client.post(f"/api/v1/api-keys/{key['id']}/rotate", headers=bearer(key["key"]))
    assert by_key.status_code == 403
    assert by_key.json()["error"]["code"] == "user_required"
    assert (await rotate(client, ada, key["id"], overlap_s=30 * 86400)).status_code == 201


@pytest.mark.parametrize(
    "expires_at",
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-05:00",
        "9999-12-31T23:59:59+14:00",
        (utcnow() + timedelta(days=367)).isoformat(),
    ],
)
async def test_an_expiry_more_than_a_year_ahead_is_refused(
    client: httpx.AsyncClient, signup: SignUp, expires_at: str
) -> None:
    ada = await signup()
    response = await client.post(
        "/api/v1/api-keys", json={"name": "far", "expires_at": expires_at}, headers=ada.headers
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "expires_at"
    assert error["details"]["errors"][0]["type"] == "expiry_too_far"
    assert "at most 366 days" in error["message"]


async def test_a_key_expiring_centuries_away_rotates_to_a_key_of_at_most_a_year(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    """A key made before expiries were capped (or written by hand) still rotates."""
    ada = await signup()
    old = await create_api_key(client, ada, name="forever-ish")
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(old["id"]))
            .values(expires_at=datetime(9999, 12, 31, 23, 59, tzinfo=UTC))
        )
    response = await rotate(client, ada, old["id"], overlap_s=60)
    assert response.status_code == 201, response.text
    new = response.json()
    lifetime = datetime.fromisoformat(new["expires_at"]) - datetime.fromisoformat(new["created_at"])
    assert abs(lifetime - timedelta(days=366)) < timedelta(seconds=5)
    assert (await client.get(ORGS, headers=bearer(new["key"]))).status_code == 200
    assert (await rotate(client, ada, new["id"])).status_code == 201
