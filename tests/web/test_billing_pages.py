"""The Usage & billing page and the pricing page with billing on: the plan and its
subscription, projected cost, the spend cap form, invoices (Stripe down here: a plain message,
never a 500), the past-due banner, members read-only, and no other organization's data.
(tests/browser/test_billing_flow.py goes through checkout against the Stripe double.)"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.web.templating import unit_usd
from tests.conftest import SignUp
from tests.organizations.support import add_member, create_organization
from tests.web.billing_support import flash_of, record_subscription, settings_with_stripe_down
from tests.web.support import input_attributes, submit
from tests.web.team import dashboard

PAGE = "/app/billing"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_with_stripe_down(settings_factory, tmp_path)


def cap_error(page: str) -> str:
    found = re.search(r'<p class="error" id="f-monthly_cap_usd-error">([^<]*)</p>', page)
    assert found, page
    assert 'aria-describedby="f-monthly_cap_usd-help f-monthly_cap_usd-error"' in page
    assert 'aria-invalid="true"' in page
    return found.group(1)


async def test_without_a_subscription_the_page_offers_the_paid_plans(
    app: FastAPI, signup: SignUp
) -> None:
    owner = await signup()
    async with dashboard(app, owner) as browser:
        page = await browser.get(PAGE)
        assert page.status_code == 200, page.text
        assert 'href="/app/billing" aria-current="page">Usage &amp; billing' in page.text
        assert "<strong>Free</strong>" in page.text
        assert "None: Free is free of charge" in page.text
        assert "Tasks this month" in page.text  # the usage bars
        assert "data-projected-total>$0.00" in page.text
        assert "No invoices yet" in page.text
        assert 'action="/app/billing/spend-cap"' in page.text
        assert 'action="/app/billing/portal"' not in page.text
        assert 'href="/pricing">Change plan' in page.text

        pricing = await browser.get("/pricing")
        assert pricing.status_code == 200
        pro = pricing.text.split('data-plan="pro"')[1].split("</section>")[0]
        assert 'action="/app/billing/checkout"' in pro
        assert 'name="plan" value="pro"' in pro
        assert "Choose Pro" in pro
        assert "$0.01 per task past 10,000" in pro
        free = pricing.text.split('data-plan="free"')[1].split("</section>")[0]
        assert "Current plan" in free
        enterprise = pricing.text.split('data-plan="enterprise"')[1].split("</section>")[0]
        assert "Contact us" in enterprise
        assert "checkout" not in enterprise
        # The form's redirect goes to Stripe's origin, which the page's CSP lets it reach.
        assert "form-action 'self' http://127.0.0.1:" in pricing.headers["content-security-policy"]


async def test_signed_out_visitors_are_asked_to_sign_up(client: httpx.AsyncClient) -> None:
    pricing = await client.get("/pricing")
    pro = pricing.text.split('data-plan="pro"')[1].split("</section>")[0]
    assert 'href="/signup">Sign up' in pro
    assert "checkout" not in pricing.text
    assert "Current plan" not in pricing.text


async def test_an_active_subscription_shows_its_plan_next_invoice_and_cost(
    app: FastAPI, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    period_end = await record_subscription(ctx, owner.organization_id)
    async with dashboard(app, owner) as browser:
        page = await browser.get(PAGE)
        assert page.status_code == 200, page.text
        assert '<dd data-plan="pro"><strong>Pro</strong> · $49.00 a month' in page.text
        assert 'data-subscription="active"><span aria-hidden="true">✓</span>active' in page.text
        assert f'<dt>Next invoice</dt><dd><time datetime="{period_end.isoformat()}' in page.text
        assert "data-projected-total>$49.00" in page.text
        assert "$0.01 each" in page.text
        assert 'action="/app/billing/portal"' in page.text
        # Stripe is down here: the invoices say so, the rest of the page is whole.
        assert 'data-invoices="unavailable"' in page.text
        assert "Stripe did not answer" in page.text

        pricing = await browser.get("/pricing")
        pro = pricing.text.split('data-plan="pro"')[1].split("</section>")[0]
        assert "Current plan" in pro
        assert "/app/billing/checkout" not in pricing.text


async def test_in_its_first_month_a_subscription_costs_the_rest_of_the_month(
    app: FastAPI, ctx: AppContext, signup: SignUp
) -> None:
    """Stripe's first invoice charges from the subscription's start to the month's end, to
    the second: the projected cost of that month is that share of the flat price."""
    owner = await signup()
    now = utcnow()
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    subscribed_at = max(month + (now - month) / 2, month + timedelta(seconds=1))
    subscribed_at = subscribed_at.replace(microsecond=0)
    period_end = await record_subscription(ctx, owner.organization_id, subscribed_at=subscribed_at)
    seconds_left = int((period_end - subscribed_at).total_seconds())
    share = Decimal(seconds_left) / int((period_end - month).total_seconds())
    expected = (49 * share).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    async with dashboard(app, owner) as browser:
        page = await browser.get(PAGE)
    assert page.status_code == 200, page.text
    assert expected < 49
    assert f"data-projected-total>${expected}" in page.text
    assert f'Pro plan, from <time datetime="{subscribed_at.isoformat()}' in page.text
    assert "(prorated)" in page.text


async def test_a_subscription_ending_says_when(
    app: FastAPI, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    period_end = await record_subscription(ctx, owner.organization_id, cancel_at_period_end=True)
    async with dashboard(app, owner) as browser:
        page = await browser.get(PAGE)
        assert "<dt>Cancels on</dt>" in page.text
        assert period_end.strftime("%B %-d, %Y") in page.text
        assert "then the Free plan" in page.text
        assert "Next invoice" not in page.text


async def test_a_failed_payment_shows_a_banner_here_and_on_home(
    app: FastAPI, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    since = utcnow() - timedelta(days=2)
    await record_subscription(ctx, owner.organization_id, status="past_due", past_due_since=since)
    grace_end = since + timedelta(days=ctx.settings.billing_grace_days)
    sentence = (
        "<strong>Your last payment failed;</strong> update your card by "
        f'<time datetime="{grace_end.isoformat()}">{grace_end.strftime("%B %-d, %Y")}</time> '
        "to keep Pro."
    )
    async with dashboard(app, owner) as browser:
        for path in (PAGE, "/app"):
            page = await browser.get(path)
            assert page.status_code == 200, page.text
            banner = page.text.split('data-billing-alert="past_due">')[1].split("</div>")[0]
            assert sentence in banner, banner
            assert 'action="/app/billing/portal"' in banner
            assert "Manage billing" in banner
        billing = await browser.get(PAGE)
        assert 'data-subscription="past_due"' in billing.text


async def test_returning_from_checkout_shows_a_note_and_changes_nothing(
    app: FastAPI, signup: SignUp
) -> None:
    owner = await signup()
    async with dashboard(app, owner) as browser:
        paid = await browser.get(f"{PAGE}?checkout=success")
        assert flash_of(paid.text) == (
            "success",
            "Payment received; your plan changes as soon as Stripe confirms it.",
        )
        assert "<strong>Free</strong>" in paid.text  # only the webhook changes the plan
        canceled = await browser.get(f"{PAGE}?checkout=cancel")
        assert flash_of(canceled.text) == (
            "info",
            "Checkout canceled; nothing was charged and your plan is unchanged.",
        )


async def test_checkout_and_portal_refusals_come_back_as_messages(
    app: FastAPI, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    async with dashboard(app, owner) as browser:
        # No `saassy billing sync` ran: the plan has no Stripe price.
        refused = await submit(browser, "/app/billing/checkout", {"plan": "pro"}, page="/pricing")
        assert refused.status_code == 303
        assert refused.headers["location"] == PAGE
        page = await browser.get(PAGE)
        assert flash_of(page.text) == (
            "error",
            "The pro plan has no Stripe price yet; the operator runs `saassy billing sync`.",
        )
        await record_subscription(ctx, owner.organization_id)
        down = await submit(browser, "/app/billing/portal", page=PAGE)
        assert down.status_code == 303
        page = await browser.get(down.headers["location"])
        assert flash_of(page.text) == (
            "error",
            "Stripe did not answer as expected; try again in a moment.",
        )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5", "The cap cannot be negative; enter 0 to allow no overage at all."),
        ("lots", "Enter an amount in US dollars, for example 25.00."),
        ("", "Enter an amount in US dollars, for example 25.00."),
        ("NaN", "Enter an amount in US dollars, for example 25.00."),
        ("\u0661\u0662", "Enter an amount in US dollars, for example 25.00."),
        ("2_500", "Enter an amount in US dollars, for example 25.00."),
        ("12.345", "Use at most 2 decimals (cents), for example 25.50."),
        ("10000000.01", "The cap can be at most $10,000,000 a month."),
    ],
)
async def test_a_bad_spend_cap_is_shown_beside_the_field(
    app: FastAPI, signup: SignUp, value: str, message: str
) -> None:
    owner = await signup()
    async with dashboard(app, owner) as browser:
        refused = await submit(
            browser, "/app/billing/spend-cap", {"monthly_cap_usd": value}, page=PAGE
        )
        assert refused.status_code == 422
        assert cap_error(refused.text) == message
        assert f'name="monthly_cap_usd" type="text" value="{value}"' in refused.text
        assert input_attributes(refused.text, "monthly_cap_usd")["inputmode"] == "decimal"
        page = await browser.get(PAGE)
        assert "No cap: overage is billed as it comes." in page.text


async def test_set_and_remove_the_spend_cap(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    await record_subscription(ctx, owner.organization_id)
    async with dashboard(app, owner) as browser:
        saved = await submit(
            browser, "/app/billing/spend-cap", {"monthly_cap_usd": "$25"}, page=PAGE
        )
        assert saved.status_code == 303
        page = await browser.get(PAGE)
        assert flash_of(page.text) == ("success", "Spend cap set to $25.00 a month.")
        assert 'Cap: <strong class="num">$25.00</strong>' in page.text
        assert "data-cap-share>0% used" in page.text
        api = await client.get("/api/v1/billing/spend-cap", headers=owner.headers)
        assert api.json()["monthly_cap_usd"] == "25.00"
        removed = await submit(browser, "/app/billing/spend-cap/remove", page=PAGE)
        assert removed.status_code == 303
        page = await browser.get(PAGE)
        assert flash_of(page.text) == ("success", "Spend cap removed.")
        assert "No cap: overage is billed as it comes." in page.text
    api = await client.get("/api/v1/billing/spend-cap", headers=owner.headers)
    assert api.json()["monthly_cap_usd"] is None


async def test_members_see_billing_read_only(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Team")
    await record_subscription(ctx, team["id"])
    member = await add_member(client, ctx, signup, owner, team["id"], "member")
    async with dashboard(app, member, team["id"]) as browser:
        page = await browser.get(PAGE)
        assert page.status_code == 200, page.text
        assert "<strong>Pro</strong>" in page.text
        assert "Owners and admins change the plan" in page.text
        assert "Owners and admins set the spend cap." in page.text
        for action in ("spend-cap", "portal", "checkout"):
            assert f'action="/app/billing/{action}"' not in page.text
        pricing = await browser.get("/pricing")
        assert "/app/billing/checkout" not in pricing.text
        for action, data in (
            ("spend-cap", {"monthly_cap_usd": "1"}),
            ("spend-cap/remove", {}),
            ("portal", {}),
            ("checkout", {"plan": "pro"}),
        ):
            refused = await submit(browser, f"/app/billing/{action}", data, page=PAGE)
            assert refused.status_code == 403, action
    api = await client.get(
        "/api/v1/billing/spend-cap",
        headers={**owner.headers, "Saassy-Organization": team["id"]},
    )
    assert api.json()["monthly_cap_usd"] is None


async def test_another_organizations_billing_is_never_shown(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    paying = await signup()
    other = await signup()
    await record_subscription(
        ctx, paying.organization_id, status="past_due", past_due_since=utcnow()
    )
    async with dashboard(app, paying) as browser:
        saved = await submit(
            browser, "/app/billing/spend-cap", {"monthly_cap_usd": "77.13"}, page=PAGE
        )
        assert saved.status_code == 303
    async with dashboard(app, other) as browser:
        page = await browser.get(PAGE)
        assert "<strong>Free</strong>" in page.text
        assert "77.13" not in page.text
        assert "past_due" not in page.text
        assert "payment failed" not in page.text
        assert "No cap" in page.text
        # The forms act on the caller's organization only, whatever the form says.
        await submit(
            browser,
            "/app/billing/spend-cap",
            {"monthly_cap_usd": "3", "organization_id": paying.organization_id},
            page=PAGE,
        )
    mine = await client.get("/api/v1/billing/spend-cap", headers=paying.headers)
    assert mine.json()["monthly_cap_usd"] == "77.13"
    theirs = await client.get("/api/v1/billing/spend-cap", headers=other.headers)
    assert theirs.json()["monthly_cap_usd"] == "3.00"


def test_unit_prices_show_to_the_cent() -> None:
    assert unit_usd(Decimal("0.1")) == "0.10"
    assert unit_usd(Decimal("0.005")) == "0.005"
    assert unit_usd(Decimal("1200")) == "1,200.00"
