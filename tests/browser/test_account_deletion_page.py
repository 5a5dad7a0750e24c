"""Deleting an account in Chromium: the warning, the password, the confirmation dialog, then the
signed-out page; checked by axe-core and photographed at 1280 and 390 px."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.browser.support import LiveServer
from tests.browser.test_audit_pages import log_in, look_at_both_widths
from tests.conftest import SignUp


async def test_delete_the_account_from_the_account_page(
    page: Page, live_server: LiveServer, signup: SignUp
) -> None:
    owner = await signup(organization="Ada's lab")
    await log_in(page, live_server, owner)
    await page.goto(live_server.url + "/app/account#delete")
    section = page.locator("#delete")
    await expect(section).to_contain_text("Ada's lab")
    await look_at_both_widths(page, "account-delete")

    await page.get_by_label("Your password", exact=True).fill(owner.password)
    await page.get_by_role("button", name="Delete my account").first.click()
    dialog = page.get_by_role("dialog", name="Delete your account?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Delete my account").click()

    await expect(page).to_have_url(re.compile(r"/account-deleted$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your account is being deleted")
    await look_at_both_widths(page, "account-deleted")
    await page.goto(live_server.url + "/app")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
