"""Reconciliation as a careless or hostile caller would ask for it: months out of any range
Stripe or a calendar knows, and Stripe not answering. Never a 500: the API says what is wrong,
the staff page shows our own figures and says Stripe's cannot be read."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import month_start, utcnow
from tests.billing.ledger import billed_organization
from tests.conftest import Account, SignUp
from tests.quotas.conftest import make_staff
from tests.web.billing_support import settings_with_stripe_down
from tests.web.team import SCRIPT, assert_inert
from tests.web.test_staff import staff  # noqa: F401 - a fixture

API = "/api/v1/admin/billing/reconciliation"
PAGE = "/app/staff/billing"
# Year 0 and the month after 9999-12 are no dates; before 1970 is no Unix time for Stripe;
# non-ASCII digits are digits to Python's re and int() but not a month written YYYY-MM.
BAD_PERIODS = ["0000-01", "9999-12", "0001-01", "1969-12", "\u0662\u0660\u0662\u0666-11"]


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_with_stripe_down(settings_factory, tmp_path)


async def staff_account(ctx: AppContext, signup: SignUp) -> Account:
    account = await signup()
    await make_staff(ctx, uuid.UUID(account.user_id))
    return account


def last_month() -> str:
    return f"{month_start(utcnow()) - timedelta(days=1):%Y-%m}"


@pytest.mark.parametrize("period", BAD_PERIODS)
async def test_a_month_out_of_range_is_refused_with_its_field(
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    staff: httpx.AsyncClient,  # noqa: F811 - the fixture
    period: str,
) -> None:
    reader = await staff_account(ctx, signup)
    answer = await client.get(API, params={"period": period}, headers=reader.headers)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_period", "period")
    assert "From 1970-01 to 9999-11" in error["message"]
    page = await staff.get(PAGE, params={"period": period})
    assert page.status_code == 200, page.text
    assert "The period is a month written YYYY-MM. From 1970-01 to 9999-11." in page.text


async def test_the_first_and_last_months_are_read(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp
) -> None:
    reader = await staff_account(ctx, signup)
    for period in ("1970-01", "9999-11"):
        answer = await client.get(API, params={"period": period}, headers=reader.headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["period"] == period


async def test_stripe_not_answering_is_a_503_and_the_page_shows_our_figures(
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    staff: httpx.AsyncClient,  # noqa: F811 - the fixture
) -> None:
    # A tenant names its organization to script the staff page that lists it.
    await billed_organization(ctx, plan="pro", overrides={}, name=SCRIPT)
    reader = await staff_account(ctx, signup)
    answer = await client.get(API, params={"period": last_month()}, headers=reader.headers)
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "stripe_unavailable"
    page = await staff.get(PAGE, params={"period": last_month()})
    assert page.status_code == 200, page.text
    assert 'data-stripe="unavailable"' in page.text
    assert_inert(page.text, SCRIPT)
    assert page.text.count('<td class="num">?</td>') == 4  # two meters, Stripe and the gap
    for secret in (ctx.settings.stripe_secret_key, ctx.settings.stripe_webhook_secret):
        assert secret is not None
        assert secret.get_secret_value() not in page.text + answer.text
