"""Deleting an account cancels its organizations' subscriptions at Stripe and keeps no billing
row of them; the invoices stay at Stripe."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from saassy.config import Settings
from saassy.context import AppContext
from saassy.models import BillingCustomer, BillingSubscription
from saassy.privacy.erasure_jobs import AccountEraser
from tests.billing.billing_app import (
    billing_settings,
    deliver,
    stripe_events,
    synced,  # noqa: F401 - a fixture
)
from tests.billing.stripe_services import StripeServices
from tests.billing.test_subscriptions import subscribe
from tests.conftest import SignUp


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, stripe_services: StripeServices
) -> Settings:
    return billing_settings(settings_factory, tmp_path, stripe_services)


@pytest.mark.usefixtures("synced")
async def test_the_subscription_is_canceled_and_no_billing_row_stays(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()
    with stripe_events(stripe_services, ctx.settings) as events:
        completed, _ = await subscribe(client, stripe_services, events, owner)
        assert (await deliver(client, completed)).status_code == 200
    async with ctx.sessionmaker() as session:
        subscription_id = await session.scalar(select(BillingSubscription.stripe_subscription_id))
    assert subscription_id is not None

    accepted = await client.post(
        "/api/v1/account/deletion", json={"password": owner.password}, headers=owner.headers
    )
    assert accepted.status_code == 202, accepted.text
    assert len(await AccountEraser(ctx.sessionmaker, ctx.settings, ctx.storage).erase_due()) == 1

    stripe = stripe_services.client()
    canceled = await asyncio.to_thread(stripe.v1.subscriptions.retrieve, subscription_id)
    assert canceled.status == "canceled"
    async with ctx.sessionmaker() as session:
        for model in (BillingCustomer, BillingSubscription):
            assert await session.scalar(select(func.count()).select_from(model)) == 0
