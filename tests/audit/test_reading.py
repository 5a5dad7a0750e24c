"""Who reads the audit log: an organization's owners theirs, staff everyone's; nobody edits it."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from saassy.context import AppContext
from saassy.kit.time import utcnow
from tests.audit.support import entries
from tests.conftest import CLIENT_IP, Account, SignUp
from tests.organizations.support import add_member, create_api_key, create_organization
from tests.quotas.conftest import make_staff
from tests.vault.support import put_secret


async def _busy_owner(client: httpx.AsyncClient, signup: SignUp) -> Account:
    """An owner whose personal organization has three entries: two secrets and a key."""
    owner = await signup()
    assert (await put_secret(client, owner.headers, "FIRST", "v")).status_code == 201
    assert (await put_secret(client, owner.headers, "SECOND", "v")).status_code == 201
    await create_api_key(client, owner)
    return owner


async def test_an_owner_reads_their_organization_newest_first_page_by_page(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await _busy_owner(client, signup)
    other = await _busy_owner(client, signup)
    url = f"/api/v1/organizations/{owner.organization_id}/audit"

    seen: list[dict[str, object]] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        response = await client.get(url, params=params, headers=owner.headers)
        assert response.status_code == 200, response.text
        seen += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert [item["action"] for item in seen] == ["api_key.created", "secret.set", "secret.set"]
    assert [item["details"].get("name") for item in seen] == ["ci", "SECOND", "FIRST"]
    assert {item["organization_id"] for item in seen} == {owner.organization_id}
    assert seen[0]["actor"] == {"user_id": owner.user_id, "api_key_id": None, "staff": False}
    assert other.organization_id not in str(seen)


async def test_filters_by_action_and_time(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await _busy_owner(client, signup)
    url = f"/api/v1/organizations/{owner.organization_id}/audit"
    only_keys = await client.get(url, params={"action": "api_key.created"}, headers=owner.headers)
    assert [i["action"] for i in only_keys.json()["items"]] == ["api_key.created"]
    both = await client.get(
        url, params=[("action", "api_key.created"), ("action", "secret.set")], headers=owner.headers
    )
    assert len(both.json()["items"]) == 3
    bad = await client.get(url, params={"action": "no.such"}, headers=owner.headers)
    assert bad.status_code == 422

    _first, second, third = await entries(ctx)
    window = {"since": second.created_at.isoformat(), "until": third.created_at.isoformat()}
    response = await client.get(url, params=window, headers=owner.headers)
    assert [i["id"] for i in response.json()["items"]] == [str(second.id)]
    future = {"since": (utcnow() + timedelta(days=1)).isoformat()}
    assert (await client.get(url, params=future, headers=owner.headers)).json()["items"] == []


@pytest.mark.parametrize(
    ("since", "until", "found"),
    [
        # Beyond what a datetime holds once in UTC: before or after every entry, not a 500.
        ("0001-01-01T00:00:00+05:00", None, 3),
        ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", 3),
        (None, "9999-12-31T23:00:00-05:00", 3),
        (None, "0001-01-01T00:00:00+01:00", 0),
        ("9999-12-31T23:59:59-14:00", None, 0),
        ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", 3),
    ],
)
async def test_a_time_filter_at_the_edge_of_the_calendar_is_not_an_error(
    client: httpx.AsyncClient,
    signup: SignUp,
    since: str | None,
    until: str | None,
    found: int,
) -> None:
    owner = await _busy_owner(client, signup)
    params = {"since": since, "until": until}
    params = {name: value for name, value in params.items() if value is not None}
    url = f"/api/v1/organizations/{owner.organization_id}/audit"
    response = await client.get(url, params=params, headers=owner.headers)
    assert response.status_code == 200, response.text
    assert len(response.json()["items"]) == found


async def test_a_member_who_is_not_owner_is_refused_and_another_organization_is_not_found(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = (await create_organization(client, owner))["id"]
    admin = await add_member(client, ctx, signup, owner, team, role="admin")
    member = await add_member(client, ctx, signup, owner, team)
    key = await create_api_key(client, owner, team)
    stranger = await signup()
    url = f"/api/v1/organizations/{team}/audit"

    assert (await client.get(url, headers=owner.headers)).status_code == 200
    for refused in (admin.headers, member.headers, {"Authorization": f"Bearer {key['key']}"}):
        response = await client.get(url, headers=refused)
        assert response.status_code == 403, response.text
    assert (await client.get(url, headers=stranger.headers)).status_code == 404
    missing = "/api/v1/organizations/00000000-0000-4000-8000-000000000000/audit"
    assert (await client.get(missing, headers=owner.headers)).status_code == 404
    assert (await client.get("/api/v1/admin/audit", headers=owner.headers)).status_code == 403


async def test_staff_read_every_organization_and_the_sign_ins(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    one, two = await _busy_owner(client, signup), await _busy_owner(client, signup)
    staff = await signup()
    await make_staff(ctx, staff.user_id)
    login = {"email": one.email, "password": "wrong password here"}
    assert (await client.post("/api/v1/auth/login", json=login)).status_code == 401

    every = await client.get("/api/v1/admin/audit", headers=staff.headers)
    assert every.status_code == 200
    items = every.json()["items"]
    assert len(items) == 7
    assert items[0]["action"] == "auth.sign_in_failed"
    assert items[0]["organization_id"] is None
    assert {i["organization_id"] for i in items[1:]} == {one.organization_id, two.organization_id}
    one_only = await client.get(
        "/api/v1/admin/audit",
        params={"organization_id": one.organization_id},
        headers=staff.headers,
    )
    assert {i["organization_id"] for i in one_only.json()["items"]} == {one.organization_id}


async def test_no_route_changes_or_deletes_an_entry(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await _busy_owner(client, signup)
    await make_staff(ctx, owner.user_id)
    before = [(e.id, e.action, e.created_at, e.details) for e in await entries(ctx)]
    entry_id = before[0][0]
    for url in (f"/api/v1/organizations/{owner.organization_id}/audit", "/api/v1/admin/audit"):
        for method in ("PUT", "PATCH", "DELETE", "POST"):
            response = await client.request(method, url, json={}, headers=owner.headers)
            assert response.status_code == 405, (method, url, response.text)
        item_url = f"{url}/{entry_id}"
        for method in ("PUT", "PATCH", "DELETE"):
            response = await client.request(method, item_url, json={}, headers=owner.headers)
            assert response.status_code in (404, 405), (method, item_url)
    assert [(e.id, e.action, e.created_at, e.details) for e in await entries(ctx)] == before


async def test_owners_see_that_staff_acted_not_who_or_from_where(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    customer, staff = await signup(), await signup()
    await make_staff(ctx, staff.user_id)
    url = f"/api/v1/admin/organizations/{customer.organization_id}/plan"
    assert (await client.put(url, json={"plan": "pro"}, headers=staff.headers)).is_success

    owners_view = await client.get(
        f"/api/v1/organizations/{customer.organization_id}/audit", headers=customer.headers
    )
    [entry] = owners_view.json()["items"]
    assert entry["action"] == "plan.changed"
    assert entry["actor"] == {"user_id": None, "api_key_id": None, "staff": True}
    assert (entry["ip"], entry["user_agent"]) == (None, None)
    staffs_view = await client.get("/api/v1/admin/audit", headers=staff.headers)
    [entry] = staffs_view.json()["items"]
    assert entry["actor"] == {"user_id": staff.user_id, "api_key_id": None, "staff": True}
    assert entry["ip"] == CLIENT_IP


async def test_staff_find_what_concerns_one_address(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada, bob, staff = await signup(), await signup(), await signup()
    await make_staff(ctx, staff.user_id)
    for email in (ada.email.upper(), bob.email, "ghost@example.com"):
        wrong = {"email": email, "password": "not the password"}
        assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401
    await create_api_key(client, ada)

    async def about(email: str) -> list[str]:
        response = await client.get(
            "/api/v1/admin/audit", params={"email": email}, headers=staff.headers
        )
        assert response.status_code == 200, response.text
        return [item["action"] for item in response.json()["items"]]

    assert await about(ada.email) == ["api_key.created", "auth.sign_in_failed"]
    assert await about("GHOST@example.com") == ["auth.sign_in_failed"]
    assert await about("nobody-at-all@example.com") == []
