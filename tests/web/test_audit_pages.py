"""The audit log pages: owners read their organization's, staff everyone's; what the dashboard
does is recorded as what the API does, once per action, with the browser's address."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from saassy.context import AppContext
from tests.audit.support import action_counts, entries, table_text
from tests.conftest import CLIENT_IP, SignUp
from tests.organizations.support import add_member, create_api_key, create_organization
from tests.quotas.conftest import make_staff
from tests.vault.support import put_secret
from tests.web.support import browser_for, submit
from tests.web.team import SCRIPT, assert_inert, dashboard

CANARY = "canary-0b1d-dashboard-secret-value"
ROW_ACTION = re.compile(r'<code class="muted">([a-z_.]+)</code>')


def actions_shown(page: httpx.Response) -> list[str]:
    """The action code of each row of the log's table, top to bottom."""
    assert page.status_code == 200, page.text
    return ROW_ACTION.findall(page.text)


async def test_dashboard_actions_are_recorded_once_each_without_values(
    app: FastAPI, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    async with browser_for(app) as browser:
        wrong = {"email": owner.email, "password": "not the password"}
        assert (await submit(browser, "/login", wrong)).status_code == 401
    async with dashboard(app, owner) as browser:
        page = "/app/secrets/new"
        stored = await submit(
            browser, "/app/secrets", {"name": "TOKEN", "value": CANARY}, page=page
        )
        assert stored.status_code == 303, stored.text
        deleted = await submit(browser, "/app/secrets/TOKEN/delete", page="/app/secrets/TOKEN")
        assert deleted.status_code == 303
        created = await submit(browser, "/app/api-keys", {"name": "deploy"}, page="/app/api-keys")
        assert created.status_code == 201

    assert await action_counts(ctx) == {
        "auth.sign_in_failed": 1,
        "auth.signed_in": 1,
        "secret.set": 1,
        "secret.deleted": 1,
        "api_key.created": 1,
    }
    for entry in await entries(ctx):
        assert entry.ip == CLIENT_IP
        assert entry.user_agent is not None
        assert entry.user_agent.startswith("python-httpx/")
    text = await table_text(ctx)
    assert CANARY not in text
    assert owner.email not in text
    assert owner.password not in text


async def test_owners_read_their_log_admins_may_not(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = (await create_organization(client, owner, "Acme"))["id"]
    admin = await add_member(client, ctx, signup, owner, team, role="admin")
    await create_api_key(client, owner, team, name=SCRIPT)
    assert (await put_secret(client, owner.headers, "SMTP", "v", team)).status_code == 201
    member_url = f"/api/v1/organizations/{team}/members/{admin.user_id}"
    assert (
        await client.patch(member_url, json={"role": "member"}, headers=owner.headers)
    ).is_success
    assert (
        await client.patch(member_url, json={"role": "admin"}, headers=owner.headers)
    ).is_success

    async with dashboard(app, owner, team) as browser:
        members = await browser.get("/app/organization/members")
        assert 'href="/app/organization/audit"' in members.text
        page = await browser.get("/app/organization/audit")
        assert page.status_code == 200
        assert actions_shown(page) == [
            "member.role_changed",
            "member.role_changed",
            "secret.set",
            "api_key.created",
            "member.invited",
        ]
        assert "Member invited" in page.text
        assert "Secret set" in page.text
        assert "Secret SMTP" in page.text
        assert "Role changed" in page.text
        assert admin.email in page.text  # a member is named by their address, now
        assert_inert(page.text, SCRIPT)
        only = await browser.get("/app/organization/audit", params={"action": "secret.set"})
        assert actions_shown(only) == ["secret.set"]
        bad = await browser.get("/app/organization/audit", params={"since": "yesterday"})
        assert "Enter a date as YYYY-MM-DD." in bad.text
        none = await browser.get("/app/organization/audit", params={"since": "2999-01-01"})
        assert "No entry matches these filters." in none.text
        assert actions_shown(none) == []

    async with dashboard(app, admin, team) as browser:
        members = await browser.get("/app/organization/members")
        assert 'href="/app/organization/audit"' not in members.text
        assert (await browser.get("/app/organization/audit")).status_code == 403


async def test_staff_read_everyones_log_others_do_not_learn_it_exists(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    customer, staff = await signup(), await signup()
    await make_staff(ctx, staff.user_id)
    await create_api_key(client, customer, name="nightly")
    wrong = {"email": customer.email, "password": "not the password"}
    assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401

    async with dashboard(app, customer) as browser:
        assert (await browser.get("/app/staff/audit")).status_code == 404
    async with dashboard(app, staff) as browser:
        page = await browser.get("/app/staff/audit")
        assert page.status_code == 200
        # Newest first: the staff member's and the customer's dashboard sign-ins, the failure.
        assert actions_shown(page) == [
            "auth.signed_in",
            "auth.signed_in",
            "auth.sign_in_failed",
            "api_key.created",
        ]
        assert "Nobody signed in" in page.text
        assert "API key nightly" in page.text
        assert 'href="/app/staff/audit"' in page.text
        scoped = await browser.get(
            "/app/staff/audit", params={"organization": customer.organization_id}
        )
        assert actions_shown(scoped) == ["api_key.created"]
        about = await browser.get("/app/staff/audit", params={"email": customer.email})
        assert actions_shown(about) == ["auth.signed_in", "auth.sign_in_failed", "api_key.created"]
        bad = await browser.get("/app/staff/audit", params={"organization": "acme"})
        assert "Enter an organization&#39;s id (a UUID)." in bad.text
