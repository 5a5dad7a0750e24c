"""`saassy billing sync`: the catalog's paid plans and the meters in Stripe, idempotently."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from saassy.billing.catalog_sync import (
    Action,
    CatalogOfAnotherAccount,
    SyncLine,
    sync_catalog,
)
from saassy.config import Settings, load_catalog
from saassy.context import AppContext
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.models import Organization
from saassy.models.billing import BillingCustomer, StripeCatalogObject
from saassy.plans.catalog import Catalog
from tests.billing.billing_app import CATALOG, billing_settings, write_catalog
from tests.billing.stripe_services import API_KEY, StripeServices
from tests.conftest import Account, SignUp
from tests.test_cli import invoke

CHECKOUT = "/api/v1/billing/checkout"


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, stripe_services: StripeServices
) -> Settings:
    return billing_settings(settings_factory, tmp_path, stripe_services)


async def sync(ctx: AppContext, catalog: Catalog | None = None) -> dict[str, SyncLine]:
    assert ctx.stripe_api is not None
    async with ctx.sessionmaker() as session, session.begin():
        result = await sync_catalog(session, ctx.stripe_api, catalog or ctx.settings.catalog)
    return {f"{line.key} {line.action.value}": line for line in result.lines}


def edited(tmp_path: Path, old: str, new: str) -> Catalog:
    assert old in CATALOG
    (tmp_path / "edited").mkdir(exist_ok=True)
    return load_catalog(write_catalog(tmp_path / "edited", CATALOG.replace(old, new)))


async def test_paid_plans_get_a_product_a_monthly_price_and_metered_prices(
    ctx: AppContext, stripe_services: StripeServices
) -> None:
    done = await sync(ctx)
    assert sorted(done) == [
        "meter:compute_units created",
        "meter:tasks created",
        "plan:pro created",
        "price:pro:compute_units created",
        "price:pro:month created",
        "price:pro:tasks created",
    ]  # free (0) and enterprise (custom price) get nothing
    client = stripe_services.client()
    monthly = client.v1.prices.retrieve(done["price:pro:month created"].stripe_id)
    assert (monthly.unit_amount, monthly.currency, monthly.lookup_key) == (
        4900,
        "usd",
        "saassy_pro_month",
    )
    assert monthly.recurring is not None
    assert (monthly.recurring.interval, monthly.recurring.usage_type) == ("month", "licensed")
    assert monthly.product == done["plan:pro created"].stripe_id == "saassy_pro"
    per_task = client.v1.prices.retrieve(done["price:pro:tasks created"].stripe_id)
    assert per_task.recurring is not None
    assert per_task.recurring.usage_type == "metered"
    assert per_task.recurring.meter == done["meter:tasks created"].stripe_id
    assert per_task.unit_amount_decimal is not None
    assert float(per_task.unit_amount_decimal) == 1.0  # 0.01 USD, in cents
    meter = client.v1.billing.meters.retrieve(done["meter:tasks created"].stripe_id)
    assert meter.event_name == "saassy_tasks"
    assert meter.customer_mapping.event_payload_key == "stripe_customer_id"
    assert meter.default_aggregation.formula == "sum"


async def test_a_second_run_writes_nothing_and_reads_one_object(
    ctx: AppContext, stripe_services: StripeServices
) -> None:
    first = await sync(ctx)
    before = stripe_services.requests()
    again = await sync(ctx)
    assert {line.action for line in again.values()} == {Action.unchanged}
    assert {line.stripe_id for line in again.values()} == {
        line.stripe_id for line in first.values()
    }
    after = stripe_services.requests()
    asked = {k: after[k] - before.get(k, 0) for k in after if k.startswith("/v1/")}
    # One stored price read back, to know the ids are this account's.
    assert {k: n for k, n in asked.items() if n} == {
        f"/v1/prices/{first['price:pro:month created'].stripe_id}": 1
    }


async def test_a_changed_amount_makes_a_new_price_and_archives_the_old(
    ctx: AppContext, stripe_services: StripeServices, tmp_path: Path
) -> None:
    first = await sync(ctx)
    old = first["price:pro:month created"].stripe_id
    done = await sync(ctx, edited(tmp_path, "price_usd_month = 49", "price_usd_month = 59"))
    new = done["price:pro:month created"].stripe_id
    assert done["price:pro:month archived"].stripe_id == old != new
    assert done["price:pro:tasks unchanged"].stripe_id == first["price:pro:tasks created"].stripe_id
    client = stripe_services.client()
    assert client.v1.prices.retrieve(old).active is False
    now_sold = client.v1.prices.retrieve(new)
    assert (now_sold.active, now_sold.unit_amount, now_sold.lookup_key) == (
        True,
        5900,
        "saassy_pro_month",
    )
    async with ctx.sessionmaker() as session:
        rows = (
            await session.scalars(
                select(StripeCatalogObject).where(StripeCatalogObject.key == "price:pro:month")
            )
        ).all()
    assert sorted((r.stripe_id, r.active) for r in rows) == sorted([(old, False), (new, True)])


async def test_a_removed_plan_has_its_product_and_prices_archived(
    ctx: AppContext, stripe_services: StripeServices, tmp_path: Path
) -> None:
    first = await sync(ctx)
    without_pro = edited(tmp_path, "price_usd_month = 49", "price_usd_month = 0")
    done = await sync(ctx, without_pro)
    assert sorted(key for key in done if key.endswith("archived")) == [
        "plan:pro archived",
        "price:pro:compute_units archived",
        "price:pro:month archived",
        "price:pro:tasks archived",
    ]
    client = stripe_services.client()
    assert client.v1.products.retrieve("saassy_pro").active is False
    assert client.v1.prices.retrieve(first["price:pro:month created"].stripe_id).active is False
    back = await sync(ctx)  # sold again: the same objects, active again
    assert (
        back["price:pro:month reactivated"].stripe_id == first["price:pro:month created"].stripe_id
    )
    assert "plan:pro reactivated" in back


def _env(settings: Settings, stripe_services: StripeServices) -> dict[str, str]:
    return {
        "SAASSY_DATABASE_URL": settings.resolved_database_url,
        "SAASSY_CONFIG": str(settings.config_path),
        "SAASSY_STRIPE_SECRET_KEY": API_KEY,
        "SAASSY_STRIPE_WEBHOOK_SECRET": "whsec_cli",
        "SAASSY_STRIPE_API_BASE": stripe_services.api_base,
    }


def test_the_command_prints_what_it_did_and_then_nothing_to_do(
    settings: Settings, stripe_services: StripeServices
) -> None:
    env = _env(settings, stripe_services)
    first = invoke("billing", "sync", env=env)
    assert first.exit_code == 0, first.output
    assert re.search(r"price:pro:month\s+created\s+price_", first.output), first.output
    assert "6 changes in Stripe" in first.output
    second = invoke("billing", "sync", env=env)
    assert second.exit_code == 0, second.output
    assert "0 changes in Stripe" in second.output


def test_without_stripe_the_command_refuses_in_one_line(
    settings_factory: Callable[..., Settings],
) -> None:
    url = settings_factory().resolved_database_url
    result = invoke("billing", "sync", env={"SAASSY_DATABASE_URL": url})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: billing is off: set SAASSY_STRIPE_SECRET_KEY (and SAASSY_STRIPE_WEBHOOK_SECRET)"
    ]


async def _customer_made(
    client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> Account:
    """An organization that opened a checkout: a Stripe customer exists for it here."""
    owner = await signup()
    opened = await client.post(CHECKOUT, json={"plan": "pro"}, headers=owner.headers)
    assert opened.status_code == 200, opened.text
    return owner


async def test_ids_of_another_account_are_made_afresh_while_nothing_was_sold(
    ctx: AppContext, stripe_services: StripeServices
) -> None:
    first = await sync(ctx)
    stripe_services.flush()  # another account, or a restarted double: none of the ids exist
    assert ctx.stripe_api is not None
    async with ctx.sessionmaker() as session, session.begin():
        result = await sync_catalog(session, ctx.stripe_api, ctx.settings.catalog)
    assert result.replaced
    done = {f"{line.key} {line.action.value}": line for line in result.lines}
    assert sorted(done) == sorted(first)  # all "created" again
    new = done["price:pro:month created"].stripe_id
    assert new != first["price:pro:month created"].stripe_id
    assert stripe_services.client().v1.prices.retrieve(new).active is True
    async with ctx.sessionmaker() as session:
        stored = (await session.scalars(select(StripeCatalogObject.stripe_id))).all()
    assert sorted(stored) == sorted(line.stripe_id for line in result.lines)


async def test_ids_of_another_account_with_customers_refuse(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    first = await sync(ctx)
    await _customer_made(client, signup, stripe_services)
    stripe_services.flush()
    with pytest.raises(CatalogOfAnotherAccount, match="belong to another Stripe account or mode"):
        await sync(ctx)
    async with ctx.sessionmaker() as session:
        stored = (await session.scalars(select(StripeCatalogObject.stripe_id))).all()
    assert sorted(stored) == sorted(line.stripe_id for line in first.values())


async def test_checkout_and_portal_name_ids_stripe_does_not_have(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    await sync(ctx)
    owner = await signup()
    stripe_services.flush()  # the stored prices are gone from Stripe
    refused = await client.post(CHECKOUT, json={"plan": "pro"}, headers=owner.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "billing_not_synced"
    assert "saassy billing sync" in refused.json()["error"]["message"]
    await sync(ctx)  # made afresh (no customer was kept: Stripe refused before one was)
    customer = await _customer_made(client, signup, stripe_services)
    stripe_services.flush()  # now the customer is gone too
    for path, body in (("checkout", {"plan": "pro"}), ("portal", None)):
        answer = await client.post(f"/api/v1/billing/{path}", json=body, headers=customer.headers)
        assert answer.status_code == 409, (path, answer.text)
        assert answer.json()["error"]["code"] == "billing_not_synced", (path, answer.text)


def test_the_command_refuses_a_database_of_another_account(
    settings: Settings, stripe_services: StripeServices
) -> None:
    env = _env(settings, stripe_services)
    assert invoke("billing", "sync", env=env).exit_code == 0
    stripe_services.flush()
    replaced = invoke("billing", "sync", env=env)
    assert replaced.exit_code == 0, replaced.output
    assert "were from another Stripe account or mode" in replaced.output
    assert "6 changes in Stripe" in replaced.output
    asyncio.run(_a_customer_row(settings))
    stripe_services.flush()
    refused = invoke("billing", "sync", env=env)
    assert refused.exit_code == 1, refused.output
    lines = refused.output.strip().splitlines()
    assert lines[-1].startswith("error: Stripe has no price "), lines
    assert "belong to another Stripe account or mode" in lines[-1]
    assert "start live on a fresh database" in lines[-1]


async def _a_customer_row(settings: Settings) -> None:
    """An organization sold to: its customer row, as the first checkout leaves it."""
    engine = create_engine(settings.resolved_database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            organization = Organization(name="Sold", plan="pro")
            session.add(organization)
            await session.flush()
            session.add(
                BillingCustomer(organization_id=organization.id, stripe_customer_id="cus_sold")
            )
    finally:
        await engine.dispose()
