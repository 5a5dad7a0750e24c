"""The audit log pages in Chromium: an owner's and the staff's, checked by axe-core, photographed
at 1280 and 390 px, and never wider than the phone's screen."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from saassy.context import AppContext
from tests.browser.support import LiveServer, assert_accessible, screenshot
from tests.conftest import Account, SignUp
from tests.organizations.support import add_member, create_api_key, create_organization
from tests.quotas.conftest import make_staff
from tests.vault.support import put_secret

PHONE_WIDTH = 390


async def log_in(page: Page, server: LiveServer, account: Account) -> None:
    await page.goto(server.url + "/login")
    await page.get_by_label("E-mail").fill(account.email)
    await page.get_by_label("Password").fill(account.password)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(server.url + "/app")


async def look_at_both_widths(page: Page, name: str) -> None:
    await assert_accessible(page)
    await screenshot(page, name)
    await page.set_viewport_size({"width": PHONE_WIDTH, "height": 844})
    # The table scrolls inside its frame; the page itself never does sideways.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE_WIDTH, f"{name} is {width} px wide at {PHONE_WIDTH} px"
    await assert_accessible(page)


async def test_an_owners_and_the_staffs_audit_log(
    page: Page,
    live_server: LiveServer,
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
) -> None:
    owner = await signup()
    team = (await create_organization(client, owner, "Acme Robotics"))["id"]
    member = await add_member(client, ctx, signup, owner, team, role="admin")
    member_url = f"/api/v1/organizations/{team}/members/{member.user_id}"
    await client.patch(member_url, json={"role": "member"}, headers=owner.headers)
    key = await create_api_key(client, owner, team, name="nightly export")
    await client.delete(
        f"/api/v1/api-keys/{key['id']}", headers=owner.headers | {"Saassy-Organization": team}
    )
    assert (await put_secret(client, owner.headers, "SMTP_PASSWORD", "v", team)).is_success
    staff = await signup()
    await make_staff(ctx, staff.user_id)
    plan = f"/api/v1/admin/organizations/{team}/plan"
    await client.put(plan, json={"plan": "pro"}, headers=staff.headers)
    wrong = {"email": owner.email, "password": "not the password"}
    assert (await client.post("/api/v1/auth/login", json=wrong)).status_code == 401

    await log_in(page, live_server, owner)
    await page.goto(live_server.url + "/app/organization")
    await page.locator("#org-switch").select_option(team)
    await page.get_by_role("button", name="Switch").click()
    await page.goto(live_server.url + "/app/organization/members")
    await page.get_by_role("link", name="Audit log").click()
    await expect(page.locator("main table")).to_contain_text("Plan changed")
    await expect(page.locator("main table")).to_contain_text("Staff")
    await look_at_both_widths(page, "organization-audit")

    await page.context.clear_cookies()
    await page.set_viewport_size({"width": 1280, "height": 800})
    await log_in(page, live_server, staff)
    await page.get_by_role("link", name="Audit log").click()
    await expect(page.locator("main table")).to_contain_text("Nobody signed in")
    await page.get_by_label("Action").select_option("plan.changed")
    await page.get_by_role("button", name="Filter").click()
    await expect(page.locator("main tbody tr")).to_have_count(1)
    await page.get_by_label("Action").select_option("")
    await page.get_by_role("button", name="Filter").click()
    await look_at_both_widths(page, "staff-audit")
