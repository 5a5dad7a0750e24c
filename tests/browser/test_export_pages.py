"""Data exports in Chromium: a customer asks for their data on the account page, follows the
e-mailed link and gets the ZIP; both sections pass axe-core at 1280 and 390 px."""

from __future__ import annotations

import io
import json
import zipfile

from playwright.async_api import Page, expect

from saassy.context import AppContext
from tests.browser.support import LiveServer, links_in, mails_to
from tests.browser.test_audit_pages import log_in, look_at_both_widths
from tests.conftest import SignUp
from tests.privacy.support import build_exports


async def test_a_customer_downloads_their_data_from_the_mailed_link(
    page: Page, live_server: LiveServer, ctx: AppContext, signup: SignUp
) -> None:
    customer = await signup()
    await log_in(page, live_server, customer)
    await page.goto(live_server.url + "/app/account")
    section = page.get_by_role("region", name="Download your data")
    await section.get_by_role("button", name="Request an export").click()
    await expect(page.get_by_role("status")).to_contain_text("e-mail you a download link")
    await expect(section.get_by_role("table")).to_contain_text("queued")

    await build_exports(ctx)
    [mail] = [m for m in await mails_to(live_server, customer.email) if "export" in m.subject]
    [link] = [url for url in links_in(mail.body) if "/app/account/exports/" in url]
    await page.goto(live_server.url + "/app/account")
    await expect(section.get_by_role("table")).to_contain_text("ready")
    await look_at_both_widths(page, "account-exports")

    async with page.expect_download() as waiting:
        await page.evaluate("url => { location.href = url; }", link)
    download = await waiting.value
    path = await download.path()
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["requested_by"]["email"] == customer.email

    await page.set_viewport_size({"width": 1280, "height": 900})
    await page.goto(live_server.url + "/app/organization")
    organization = page.get_by_role("region", name="Download the organization's data")
    await organization.get_by_role("button", name="Request an organization export").click()
    await expect(page.get_by_role("status")).to_contain_text("e-mail you a download link")
    await look_at_both_widths(page, "organization-exports")
