"""The API keys page in Chromium: a scoped, expiring key created, then rotated with an overlap;
checked by axe-core, photographed at 1280 and 390 px, and never wider than the phone's screen."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from tests.browser.support import LiveServer
from tests.browser.test_audit_pages import log_in, look_at_both_widths
from tests.conftest import SignUp


async def test_create_a_scoped_key_and_rotate_it(
    page: Page, live_server: LiveServer, signup: SignUp
) -> None:
    owner = await signup()
    await log_in(page, live_server, owner)
    await page.goto(live_server.url + "/app/api-keys")
    await page.get_by_label("Name").fill("nightly export")
    await page.get_by_label("Scope").select_option("read")
    await page.get_by_label("Expires").select_option("90")
    await page.get_by_role("button", name="Create key").click()
    old_key = await page.locator("#new-api-key").input_value()
    assert old_key.startswith("sk_")

    await page.goto(live_server.url + "/app/api-keys")
    await page.locator("details.rotate summary").click()
    await page.get_by_label("Old key keeps working").select_option("3600")
    await page.get_by_role("button", name="Rotate now nightly export").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("API key rotated")
    new_key = await page.locator("#new-api-key").input_value()
    assert new_key.startswith("sk_")
    assert new_key != old_key
    async with httpx.AsyncClient(base_url=live_server.url) as api:
        for key in (old_key, new_key):
            reads = await api.get("/api/v1/tasks", headers={"Authorization": f"Bearer {key}"})
            assert reads.status_code == 200
        refused = await api.post(
            "/api/v1/tasks", json={"type": "echo"}, headers={"Authorization": f"Bearer {new_key}"}
        )
        assert refused.json()["error"]["details"] == {"scope": "tasks:write"}

    await page.goto(live_server.url + "/app/api-keys")
    table = page.locator("main table")
    await expect(table).to_contain_text("rotating until")
    await expect(table).to_contain_text("read")
    await expect(page.locator("details.rotate")).to_have_count(1)  # the new key's only
    await page.locator("details.rotate summary").click()
    await look_at_both_widths(page, "api-keys-rotating")
