"""Reconciliation as a careless or hostile caller would ask for it: months out of any range
Stripe or a calendar knows. Never a 500: the API and the staff page say what is wrong."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from saassy.config import Settings
from saassy.context import AppContext
from tests.conftest import Account, SignUp
from tests.quotas.conftest import make_staff
from tests.web.billing_support import settings_with_stripe_down
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
