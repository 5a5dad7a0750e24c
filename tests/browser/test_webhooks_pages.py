"""The Webhooks pages in Chromium: empty, an endpoint added (its secret once), its delivery log
with attempts, deleted through the confirm dialog; each checked by axe-core and photographed at
1280 and 390 px, and never wider than a phone."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from saassy.models import WebhookAttempt, WebhookEndpoint, WebhookMessage, WebhookMessageStatus
from tests.browser.support import LiveServer
from tests.browser.test_schedules import look

pytestmark = pytest.mark.timeout(180)


async def test_the_webhooks_pages(page: Page, live_server: LiveServer) -> None:
    url = live_server.url
    await page.goto(url + "/signup")
    await page.get_by_label("E-mail").fill("hooks@example.com")
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign up").click()
    await expect(page).to_have_url(re.compile(r"/app$"))

    await page.get_by_role("complementary").get_by_role("link", name="Webhooks").click()
    await expect(page.locator("main")).to_contain_text("No webhook endpoints yet.")
    await look(page, "webhooks-empty")

    await page.get_by_label("URL").fill("https://hooks.example.com/saassy-events")
    await page.get_by_label("task.failed").check()
    await page.get_by_role("button", name="Add endpoint").click()
    secret = await page.locator("#new-webhook-secret").input_value()
    assert secret.startswith("whsec_")
    await look(page, "webhook-created")

    ctx = live_server.ctx
    async with ctx.sessionmaker() as session, session.begin():
        endpoint = (await session.scalars(select(WebhookEndpoint))).one()
        message = WebhookMessage(
            organization_id=endpoint.organization_id,
            endpoint_id=endpoint.id,
            event_type="task.failed",
            event={"type": "task.failed", "data": {}},
            status=WebhookMessageStatus.failed,  # a pending one is not offered to send again
            attempts=2,
            total_attempts=2,
            next_attempt_at=None,
            last_error="HTTP 503",
        )
        session.add(message)
        await session.flush()
        for number, code in ((1, 500), (2, 503)):
            session.add(
                WebhookAttempt(
                    message_id=message.id,
                    number=number,
                    succeeded=False,
                    status_code=code,
                    duration_ms=42 * number,
                    error=f"HTTP {code}",
                    response_body="upstream is down",
                )
            )

    await page.get_by_role("link", name="Done: see its delivery log").click()
    await expect(page.locator("main table").first).to_contain_text("task.failed")
    await page.locator("main summary").first.click()
    await expect(page.locator("main")).to_contain_text("upstream is down")
    await look(page, "webhook-log")

    await page.get_by_role("button", name=re.compile("^Send again")).click()
    await expect(page.get_by_role("status")).to_contain_text("The message will be sent again.")

    await page.goto(url + "/app/webhooks")
    await expect(page.locator("main table")).to_contain_text("hooks.example.com")
    await look(page, "webhooks")
    await page.get_by_role("button", name=re.compile("^Delete")).click()
    await page.get_by_role("dialog").get_by_role("button", name="Delete endpoint").click()
    await expect(page.get_by_role("status")).to_contain_text("Endpoint deleted")
    await expect(page.locator("main")).to_contain_text("No webhook endpoints yet.")
