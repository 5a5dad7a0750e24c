"""`saassy billing sync`: the catalog's paid plans and the meters in Stripe, idempotently."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from saassy.billing.catalog_sync import Action, SyncLine, sync_catalog
from saassy.config import Settings, load_catalog
from saassy.context import AppContext
from saassy.models.billing import StripeCatalogObject
from saassy.plans.catalog import Catalog
from tests.billing.billing_app import CATALOG, billing_settings, write_catalog
from tests.billing.stripe_services import API_KEY, StripeServices
from tests.test_cli import invoke


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, stripe_services: StripeServices
) -> Settings:
    return billing_settings(settings_factory, tmp_path, stripe_services)


async def sync(ctx: AppContext, catalog: Catalog | None = None) -> dict[str, SyncLine]:
    assert ctx.stripe_api is not None
    async with ctx.sessionmaker() as session, session.begin():
        lines = await sync_catalog(session, ctx.stripe_api, catalog or ctx.settings.catalog)
    return {f"{line.key} {line.action.value}": line for line in lines}


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


async def test_a_second_run_changes_nothing_and_asks_stripe_nothing(
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
    assert {k: v for k, v in after.items() if k.startswith("/v1/")} == {
        k: v for k, v in before.items() if k.startswith("/v1/")
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


def test_the_command_prints_what_it_did_and_then_nothing_to_do(
    settings: Settings, stripe_services: StripeServices
) -> None:
    env = {
        "SAASSY_DATABASE_URL": settings.resolved_database_url,
        "SAASSY_CONFIG": str(settings.config_path),
        "SAASSY_STRIPE_SECRET_KEY": API_KEY,
        "SAASSY_STRIPE_WEBHOOK_SECRET": "whsec_cli",
        "SAASSY_STRIPE_API_BASE": stripe_services.api_base,
    }
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
