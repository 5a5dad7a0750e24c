"""The API-key pages: a key shown once in the answer to the form, working against the API until
it is revoked; admins and owners only."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from saassy.context import AppContext
from tests.conftest import SignUp
from tests.organizations.support import add_member, bearer, create_api_key, create_organization
from tests.web.support import browser_for, sign_up, submit
from tests.web.team import PAYLOADS, assert_inert, dashboard, flash_after

PAGE = "/app/api-keys"
KEY = re.compile(r'id="new-api-key"[^>]* value="(sk_[A-Za-z0-9_\-]+)"')


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as client:
        yield client


async def test_a_new_key_is_shown_once_works_and_stops_when_revoked(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    email = await sign_up(browser)
    empty = await browser.get(PAGE)
    assert empty.status_code == 200
    assert "No API keys yet." in empty.text
    assert "/api/v1/api-keys" in empty.text  # the equivalent curl line

    created = await submit(browser, PAGE, {"name": "CI"}, page=PAGE)
    assert created.status_code == 201
    assert created.headers["cache-control"] == "no-store"
    assert "location" not in created.headers
    assert "you will not see it again" in created.text
    found = KEY.search(created.text)
    assert found is not None
    key = found.group(1)
    # Only the page carries it: no cookie, and no later page.
    assert all(key not in header for header in created.headers.get_list("set-cookie"))
    listed = await browser.get(PAGE)
    assert key not in listed.text
    assert key[:12] in listed.text
    assert "CI" in listed.text
    assert email in listed.text  # created by
    assert "Never" in listed.text

    used = await client.get("/api/v1/organizations", headers=bearer(key))
    assert used.status_code == 200
    assert "Never" not in (await browser.get(PAGE)).text  # last used, now

    key_id = re.search(r"/app/api-keys/([0-9a-f-]+)/revoke", listed.text)
    assert key_id is not None
    revoked = await submit(browser, f"{PAGE}/{key_id.group(1)}/revoke", page=PAGE)
    assert (await flash_after(browser, revoked))[1].startswith("API key revoked")
    assert (await client.get("/api/v1/organizations", headers=bearer(key))).status_code == 401
    page = await browser.get(PAGE)
    assert "revoked" in page.text
    assert f"{PAGE}/{key_id.group(1)}/revoke" not in page.text


async def test_the_key_acts_for_the_organization_the_dashboard_works_in(
    app: FastAPI, client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Team")
    async with dashboard(app, owner, team["id"]) as browser:
        created = await submit(browser, PAGE, {"name": "team key"}, page=PAGE)
        found = KEY.search(created.text)
        assert found is not None
    mine = await client.get("/api/v1/organizations", headers=bearer(found.group(1)))
    assert [o["id"] for o in mine.json()["items"]] == [team["id"]]


async def test_a_name_is_needed(browser: httpx.AsyncClient) -> None:
    await sign_up(browser)
    refused = await submit(browser, PAGE, {"name": "  "}, page=PAGE)
    assert refused.status_code == 422
    assert 'id="f-name-error"' in refused.text
    assert "sk_" not in refused.text.replace("sk_…", "")
    too_long = "k" * 101
    refused = await submit(browser, PAGE, {"name": too_long}, page=PAGE)
    assert refused.status_code == 422
    assert f'value="{too_long}"' in refused.text
    assert "No API keys yet." in refused.text


async def test_members_cannot_manage_keys(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Team")
    existing = await create_api_key(client, owner, team["id"])
    member = await add_member(client, ctx, signup, owner, team["id"], "member")
    admin = await add_member(client, ctx, signup, owner, team["id"], "admin")
    async with dashboard(app, member, team["id"]) as browser:
        page = await browser.get(PAGE)
        assert page.status_code == 403
        assert "admin role or higher" in page.text
        created = await submit(browser, PAGE, {"name": "sneaky"}, page="/app")
        assert created.status_code == 403
        assert "sk_" not in created.text
        revoked = await submit(browser, f"{PAGE}/{existing['id']}/revoke", page="/app")
        assert revoked.status_code == 403
    assert (await client.get("/api/v1/organizations", headers=bearer(existing["key"]))).is_success
    async with dashboard(app, admin, team["id"]) as browser:
        page = await browser.get(PAGE)
        assert page.status_code == 200
        assert existing["prefix"] in page.text
        assert owner.email in page.text
    keys = await client.get(
        "/api/v1/api-keys", headers={**owner.headers, "Saassy-Organization": team["id"]}
    )
    assert [k["name"] for k in keys.json()["items"]] == ["ci"]


async def test_another_tenants_key_is_404(
    app: FastAPI, client: httpx.AsyncClient, signup: SignUp
) -> None:
    victim = await signup()
    theirs = await create_api_key(client, victim, name="Victim key")
    attacker = await signup()
    async with dashboard(app, attacker) as browser:
        response = await submit(browser, f"{PAGE}/{theirs['id']}/revoke", page=PAGE)
        assert response.status_code == 404
        assert "Victim key" not in (await browser.get(PAGE)).text
    assert (await client.get("/api/v1/organizations", headers=bearer(theirs["key"]))).is_success


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_key_names_render_inert(browser: httpx.AsyncClient, payload: str) -> None:
    await sign_up(browser)
    created = await submit(browser, PAGE, {"name": payload}, page=PAGE)
    assert created.status_code == 201
    assert_inert(created.text, payload)
    assert_inert((await browser.get(PAGE)).text, payload)
    refused = await submit(browser, PAGE, {"name": payload + "k" * 100}, page=PAGE)
    assert refused.status_code == 422
    assert_inert(refused.text, payload)


async def test_forms_without_the_csrf_token_change_nothing(
    app: FastAPI, client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    existing = await create_api_key(client, owner)
    async with dashboard(app, owner) as browser:
        await browser.get(PAGE)
        for action, data in ((PAGE, {"name": "forged"}), (f"{PAGE}/{existing['id']}/revoke", {})):
            assert (await browser.post(action, data=data)).status_code == 403
            forged = await browser.post(action, data={**data, "csrf_token": "0" * 64})
            assert forged.status_code == 403
    keys = await client.get("/api/v1/api-keys", headers=owner.headers)
    assert [(k["name"], k["revoked_at"]) for k in keys.json()["items"]] == [("ci", None)]


async def test_scope_and_expiry_are_chosen_and_a_key_is_rotated_with_an_overlap(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await sign_up(browser)
    form = (await browser.get(PAGE)).text
    assert 'name="scope"' in form
    assert 'name="expires_in_days"' in form
    created = await submit(
        browser, PAGE, {"name": "reader", "scope": "read", "expires_in_days": "30"}, page=PAGE
    )
    assert created.status_code == 201
    found = KEY.search(created.text)
    assert found is not None
    old_key = found.group(1)
    assert "Scopes: read; expires" in created.text
    refused = await client.post("/api/v1/tasks", json={"type": "echo"}, headers=bearer(old_key))
    assert refused.json()["error"]["details"] == {"scope": "tasks:write"}

    listed = (await browser.get(PAGE)).text
    assert '<code class="scope">read</code>' in listed
    key_id = re.search(r"/app/api-keys/([0-9a-f-]+)/rotate", listed)
    assert key_id is not None
    rotated = await submit(
        browser, f"{PAGE}/{key_id.group(1)}/rotate", {"overlap_s": "3600"}, page=PAGE
    )
    assert rotated.status_code == 201, rotated.text
    assert "API key rotated" in rotated.text
    assert "keeps working until" in rotated.text
    found = KEY.search(rotated.text)
    assert found is not None
    new_key = found.group(1)
    assert new_key != old_key
    for key in (old_key, new_key):
        assert (await client.get("/api/v1/tasks", headers=bearer(key))).status_code == 200

    after = (await browser.get(PAGE)).text
    assert new_key not in after
    assert "rotating until" in after
    # Only the new key can be rotated now; the old one can still be revoked at once.
    assert f"{PAGE}/{key_id.group(1)}/rotate" not in after
    assert f"{PAGE}/{key_id.group(1)}/revoke" in after
    again = await submit(browser, f"{PAGE}/{key_id.group(1)}/rotate", page=PAGE)
    assert again.status_code == 409
    assert "already rotated" in again.text


async def test_an_unknown_overlap_or_expiry_is_refused_beside_the_form(
    browser: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    await sign_up(browser)
    refused = await submit(browser, PAGE, {"name": "x", "expires_in_days": "soon"}, page=PAGE)
    assert refused.status_code == 422
    assert 'id="f-expires-error"' in refused.text
    refused = await submit(browser, PAGE, {"name": "x", "scope": "everything"}, page=PAGE)
    assert refused.status_code == 422
    assert 'id="f-scope-error"' in refused.text
    created = await submit(browser, PAGE, {"name": "y"}, page=PAGE)
    key_id = re.search(r"/app/api-keys/([0-9a-f-]+)/rotate", (await browser.get(PAGE)).text)
    assert created.status_code == 201
    assert key_id is not None
    too_long = await submit(
        browser, f"{PAGE}/{key_id.group(1)}/rotate", {"overlap_s": str(31 * 86400)}, page=PAGE
    )
    assert too_long.status_code == 422
