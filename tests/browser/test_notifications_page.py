"""The notification settings page in Chromium: opt in to failed-task e-mails, turn quota
warnings off; checked by axe-core and photographed at 1280 and 390 px."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.support import LiveServer
from tests.browser.test_audit_pages import log_in, look_at_both_widths
from tests.conftest import SignUp


async def test_opt_in_to_failed_tasks_and_out_of_quota_warnings(
    page: Page, live_server: LiveServer, signup: SignUp
) -> None:
    ada = await signup()
    await log_in(page, live_server, ada)
    await page.goto(live_server.url + "/app/account")
    await page.get_by_role("link", name="Notification settings").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Notifications")
    failed = page.get_by_label("Task failed")
    warning = page.get_by_label("Quota at 80%")
    await expect(failed).not_to_be_checked()
    await expect(warning).to_be_checked()
    await look_at_both_widths(page, "notifications")

    await failed.check()
    await warning.uncheck()
    await page.get_by_role("button", name="Save").click()
    await expect(page.get_by_role("status")).to_have_text("Notification settings saved.")
    await expect(page.get_by_label("Task failed")).to_be_checked()
    await expect(page.get_by_label("Quota at 80%")).not_to_be_checked()
    await expect(page.get_by_label("Payment failed")).to_be_checked()
