"""The billing page's other states in Chromium, checked by axe-core and photographed: a failed
payment (the banner on home and billing, Stripe not answering for the invoices) and a member's
read-only view; and the page without Stripe."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from saassy.config import Settings
from saassy.kit.time import utcnow
from saassy.models import Membership, User
from tests.browser.support import LiveServer, assert_accessible, screenshot
from tests.web.billing_support import record_subscription, settings_with_stripe_down

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(
    request: pytest.FixtureRequest,
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
    live_port: int,
) -> Settings:
    base_url = f"http://127.0.0.1:{live_port}"
    if getattr(request, "param", "on") == "off":
        return settings_factory(base_url=base_url)
    return settings_with_stripe_down(
        lambda **values: settings_factory(base_url=base_url, **values), tmp_path
    )


async def sign_up(page: Page, server: LiveServer) -> str:
    """Sign up in the browser; answers the personal organization's id."""
    email = f"payer-{uuid.uuid4().hex[:8]}@example.com"
    await page.goto(server.url + "/signup")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page).to_have_url(server.url + "/app")
    async with server.ctx.sessionmaker() as session:
        organization_id = await session.scalar(
            select(Membership.organization_id)
            .join(User, User.id == Membership.user_id)
            .where(User.email == email)
        )
    return str(organization_id)


async def test_a_failed_payment_in_the_browser(page: Page, live_server: LiveServer) -> None:
    organization_id = await sign_up(page, live_server)
    await record_subscription(
        live_server.ctx,
        organization_id,
        status="past_due",
        past_due_since=utcnow() - timedelta(days=1),
    )
    await page.goto(live_server.url + "/app")
    banner = page.locator('[data-billing-alert="past_due"]')
    await expect(banner).to_contain_text("Your last payment failed; update your card by")
    await expect(banner.get_by_role("button", name="Manage billing")).to_be_visible()
    await assert_accessible(page)
    await page.goto(live_server.url + "/app/billing")
    await expect(banner).to_contain_text("to keep Pro.")
    await expect(page.locator('[data-subscription="past_due"]')).to_have_text("!past due")
    await expect(page.locator('[data-invoices="unavailable"]')).to_be_visible()
    await page.get_by_label("Monthly cap on overage (USD)").fill("-1")
    await page.get_by_role("button", name="Save cap").click()
    await expect(page.locator("#f-monthly_cap_usd-error")).to_have_text(
        "The cap cannot be negative; enter 0 to allow no overage at all."
    )
    await assert_accessible(page)
    await screenshot(page, "billing-past-due")


@pytest.mark.parametrize("settings", ["off"], indirect=True)
async def test_the_billing_page_without_stripe_in_the_browser(
    page: Page, live_server: LiveServer
) -> None:
    await sign_up(page, live_server)
    sidebar = page.get_by_role("complementary", name="Main")
    await sidebar.get_by_role("link", name="Usage & billing").click()
    await expect(page.get_by_text("Plans are assigned by staff on this server")).to_be_visible()
    await expect(page.locator('[data-quota="tasks"]')).to_be_visible()
    await assert_accessible(page)
    await screenshot(page, "billing-without-stripe")
