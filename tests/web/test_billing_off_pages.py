"""Without SAASSY_STRIPE_SECRET_KEY: the billing page says plans are assigned by staff and
still shows usage; no checkout, portal or spend-cap form anywhere, and nothing fails."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.conftest import SignUp
from tests.web.support import submit
from tests.web.team import dashboard

PAGE = "/app/billing"


async def test_the_billing_page_without_stripe(
    app: FastAPI, client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    async with dashboard(app, owner) as browser:
        page = await browser.get(PAGE)
        assert page.status_code == 200, page.text
        assert "Plans are assigned by staff on this server" in page.text
        assert "Usage is still metered" in page.text
        assert "Tasks this month" in page.text
        assert "Projected cost this period" in page.text
        for action in ("checkout", "portal", "spend-cap"):
            assert f'action="/app/billing/{action}"' not in page.text
        assert "Invoices" not in page.text
        home = await browser.get("/app")
        assert home.status_code == 200
        assert "data-billing-alert" not in home.text
        pricing = await browser.get("/pricing")
        assert pricing.status_code == 200
        assert "/app/billing/checkout" not in pricing.text
        assert "Choose" not in pricing.text
        # The team assigns plans; paid ones are asked for, and nothing past a quota is sold.
        assert "Plans are assigned by the" in pricing.text
        assert "Contact us" in pricing.text
        assert "1,000 tasks a month" in pricing.text
        assert "per task past" not in pricing.text
        assert "per GB-hour" not in pricing.text
        assert "refused until the next month" in pricing.text
        assert "cost $0.10 each" not in page.text
        assert "refused, not billed" in page.text
        for response in (page, home, pricing):
            assert "form-action 'self';" in response.headers["content-security-policy"]
        refused = await submit(browser, "/app/billing/checkout", {"plan": "pro"}, page=PAGE)
        assert refused.status_code == 404
        # Nobody comes back from a checkout without Stripe: the parameter says nothing.
        back = await browser.get(f"{PAGE}?checkout=success")
        assert back.status_code == 200
        assert "Payment received" not in back.text
    signed_out = await client.get("/pricing")
    assert "checkout" not in signed_out.text
    assert "Start free" in signed_out.text
    assert "Plans are assigned by the" in signed_out.text
