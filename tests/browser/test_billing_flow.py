"""Buying a plan in Chromium: sign up, pricing, Choose Pro, the Stripe double's hosted checkout,
Pay, back on the billing page with its note; once Stripe's signed webhook has reached the
served app, the page shows Pro, the usage and the subscription's first invoice (localstripe's),
which like the projected cost is the rest of this calendar month, prorated from the dates.
Checked by axe-core and photographed at 1280 and 390 px (tests/browser/screenshots/)."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from saassy.config import Settings
from tests.billing.billing_app import (
    WEBHOOK_PATH,
    billing_settings,
    synced,  # noqa: F401 - a fixture
    webhook_secret,
)
from tests.billing.conftest import stripe_processes, stripe_services  # noqa: F401 - fixtures
from tests.billing.stripe_services import StripeServices
from tests.billing.test_calendar_periods import PRO_CENTS, next_month, prorated
from tests.browser.support import LiveServer, assert_accessible, screenshot

PASSWORD = "correct horse battery"
WEBHOOK_WAIT_S = 30

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings],
    tmp_path: Path,
    stripe_services: StripeServices,  # noqa: F811 - the fixture
    live_port: int,
) -> Settings:
    return billing_settings(
        settings_factory, tmp_path, stripe_services, base_url=f"http://127.0.0.1:{live_port}"
    )


async def look(page: Page, name: str) -> None:
    await assert_accessible(page)
    await screenshot(page, name)


async def reload_until(page: Page, selector: str, timeout_s: float = WEBHOOK_WAIT_S) -> None:
    """Reload the page until `selector` is on it: the webhook comes when Stripe sends it."""
    deadline = time.monotonic() + timeout_s
    while await page.locator(selector).count() == 0:
        assert time.monotonic() < deadline, f"{selector} not on {page.url} after {timeout_s} s"
        await page.wait_for_timeout(500)
        await page.reload()


@pytest.mark.usefixtures("synced")
async def test_buying_pro_through_checkout(
    page: Page,
    live_server: LiveServer,
    stripe_services: StripeServices,  # noqa: F811 - the fixture
) -> None:
    url = live_server.url
    stripe_services.webhook_register(url + WEBHOOK_PATH, webhook_secret(live_server.ctx.settings))
    email = f"buyer-{uuid.uuid4().hex[:8]}@example.com"

    await page.goto(url + "/signup")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page).to_have_url(url + "/app")

    await page.goto(url + "/pricing")
    await expect(page.locator('[data-plan="free"]')).to_contain_text("Current plan")
    await look(page, "billing-pricing")
    await page.get_by_role("button", name="Choose Pro").click()

    # The double's hosted checkout page, on its own origin.
    await expect(page.get_by_role("heading", name="Subscribe")).to_be_visible()
    assert page.url.startswith(stripe_services.api_base)
    session_id = page.url.rsplit("/", 1)[1]
    await page.get_by_role("button", name="Pay").click()

    await expect(page).to_have_url(url + "/app/billing?checkout=success")
    await expect(page.get_by_role("status").filter(has_text="Payment received")).to_have_text(
        "Payment received; your plan changes as soon as Stripe confirms it."
    )

    await reload_until(page, '[data-plan="pro"]')
    await reload_until(page, "[data-invoice]")
    await expect(page.locator('[data-plan="pro"]')).to_contain_text("Pro")
    await expect(page.locator('[data-subscription="active"]')).to_have_text(re.compile("active"))
    await expect(page.get_by_text("Next invoice")).to_be_visible()
    await expect(page.locator('[data-quota="tasks"]')).to_contain_text("/ 10,000 tasks")
    # Stripe's first invoice: from the subscription's start to the 1st of next month.
    stripe = stripe_services.client()
    paid = stripe.v1.checkout.sessions.retrieve(session_id)
    subscription = stripe.v1.subscriptions.retrieve(str(paid.subscription))
    start, anchor = subscription.start_date, next_month(paid.created)
    assert subscription["current_period_end"] == anchor
    first = prorated(PRO_CENTS, start, anchor)
    assert 0 < first < PRO_CENTS
    await expect(page.locator("[data-projected-total]")).to_have_text(f"${first / 100:.2f}")
    invoice = page.locator("[data-invoice]").first
    await expect(invoice).to_contain_text(f"{first / 100:.2f} USD")
    await expect(page.get_by_role("button", name="Manage billing")).to_be_visible()
    await look(page, "billing")

    # The pricing page now marks Pro as the plan, with nothing to buy.
    await page.goto(url + "/pricing")
    await expect(page.locator('[data-plan="pro"]')).to_contain_text("Current plan")
    await expect(page.get_by_role("button", name=re.compile("^Choose"))).to_have_count(0)
    await look(page, "billing-pricing-current")
