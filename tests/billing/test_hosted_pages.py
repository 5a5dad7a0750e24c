"""The double's Checkout and portal pages in Chromium: accessible, and they do what they say."""

from __future__ import annotations

from playwright.async_api import Page

from tests.billing.stripe_services import StripeServices
from tests.billing.test_stripe_double import catalog
from tests.browser.conftest import blocked_requests, browser, page  # noqa: F401 - fixtures
from tests.browser.support import assert_accessible


async def test_checkout_page_pays_and_portal_page_returns(
    stripe_services: StripeServices,
    page: Page,  # noqa: F811 - the fixture
) -> None:
    client = stripe_services.client()
    made = catalog(client)
    customer = client.v1.customers.create(params={"email": "owner@example.com"})
    back = f"{stripe_services.api_base}/_double/requests"  # any local page will do
    session = client.v1.checkout.sessions.create(params={
        "mode": "subscription", "customer": customer.id,
        "line_items": [{"price": made["base"].id, "quantity": 1}, {"price": made["overage"].id}],
        "success_url": f"{back}?paid={{CHECKOUT_SESSION_ID}}", "cancel_url": f"{back}?cancelled",
    })  # fmt: skip
    await page.goto(session.url or "")
    await assert_accessible(page)
    await page.get_by_role("button", name="Pay").click()
    await page.wait_for_url(f"{back}?paid={session.id}")
    assert client.v1.checkout.sessions.retrieve(session.id).status == "complete"

    portal = client.v1.billing_portal.sessions.create(
        params={"customer": customer.id, "return_url": f"{back}?from=portal"}
    )
    await page.goto(portal.url)
    await assert_accessible(page)
    await page.get_by_role("link", name="Return to the application").click()
    await page.wait_for_url(f"{back}?from=portal")
