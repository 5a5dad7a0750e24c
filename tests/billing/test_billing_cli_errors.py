"""`saassy billing` tells an operator what is wrong in one line: billing off, or Stripe's address
not answering (no traceback, no key)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from saassy.config import Settings
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.kit.secret_key import development_secret_key
from saassy.models import OutboxEmail
from saassy.models.billing import BillingCustomer
from saassy.models.organizations import Organization
from tests.billing.stripe_services import StripeServices
from tests.processes import free_port
from tests.test_cli import invoke

KEY = "sk_test_NotToBeShown1234"


@pytest.mark.parametrize("command", ["sync", "report-usage", "reconcile"])
def test_with_billing_off_each_command_says_so_in_one_line(
    settings_factory: Callable[..., Settings], command: str
) -> None:
    url = settings_factory().resolved_database_url
    result = invoke("billing", command, env={"SAASSY_DATABASE_URL": url})
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: billing is off: set SAASSY_STRIPE_SECRET_KEY (and SAASSY_STRIPE_WEBHOOK_SECRET)"
    ]


@pytest.mark.parametrize("command", ["sync", "reconcile"])
def test_a_stripe_address_that_does_not_answer_is_one_line_without_the_key(
    settings_factory: Callable[..., Settings], command: str
) -> None:
    url = settings_factory().resolved_database_url
    # A customer, so that reconcile asks Stripe for its meter figures (sync asks on a fresh
    # database anyway: nothing is made yet).
    invoke("admin", "create-user", "owner@example.com", "--password-stdin",
           env={"SAASSY_DATABASE_URL": url}, input="a long passphrase\n")  # fmt: skip
    if command == "reconcile":
        _make_every_organization_a_paying_customer(url)
    closed = f"http://127.0.0.1:{free_port()}"
    result = invoke("billing", command, env={
        "SAASSY_DATABASE_URL": url, "SAASSY_STRIPE_SECRET_KEY": KEY,
        "SAASSY_STRIPE_WEBHOOK_SECRET": "whsec_test", "SAASSY_STRIPE_API_BASE": closed,
    })  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        f"error: Stripe did not answer at {closed}: check the network and SAASSY_STRIPE_API_BASE"
    )
    assert "Traceback" not in result.output
    assert "NotToBeShown" not in result.output


def _make_every_organization_a_paying_customer(database_url: str) -> None:
    """On pro (which prices overage) with a Stripe customer: reconcile has lines to ask about."""

    async def give() -> None:
        engine = create_engine(database_url)
        try:
            async with create_sessionmaker(engine)() as session, session.begin():
                for organization in (await session.scalars(select(Organization))).all():
                    organization.plan = "pro"
                    customer_id = f"cus_{organization.id.hex[:14]}"
                    session.add(BillingCustomer(organization_id=organization.id,
                                                stripe_customer_id=customer_id))  # fmt: skip
        finally:
            await engine.dispose()

    asyncio.run(give())


@pytest.mark.parametrize("period", ["0000-01", "9999-12", "1969-12"])
def test_a_month_out_of_range_is_one_line(
    settings_factory: Callable[..., Settings], period: str
) -> None:
    url = settings_factory().resolved_database_url
    result = invoke("billing", "reconcile", "--period", period, env={
        "SAASSY_DATABASE_URL": url, "SAASSY_STRIPE_SECRET_KEY": KEY,
        "SAASSY_STRIPE_WEBHOOK_SECRET": "whsec_test",
        "SAASSY_STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}",
    })  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: The period is a month written YYYY-MM. From 1970-01 to 9999-11."
    ]


def _an_alarming_month(
    settings_factory: Callable[..., Settings], stripe_services: StripeServices
) -> tuple[str, dict[str, str | None]]:
    """A staff user and a paying customer whose meters Stripe does not have (no sync): every
    line is alarming. The database's URL and the billing settings of a `saassy dev` install."""
    url = settings_factory().resolved_database_url
    invoke("admin", "create-user", "staff@example.com", "--staff", "--password-stdin",
           env={"SAASSY_DATABASE_URL": url}, input="a long passphrase\n")  # fmt: skip
    _make_every_organization_a_paying_customer(url)
    return url, {
        "SAASSY_DATABASE_URL": url, "SAASSY_STRIPE_SECRET_KEY": KEY,
        "SAASSY_STRIPE_WEBHOOK_SECRET": "whsec_test",
        "SAASSY_STRIPE_API_BASE": stripe_services.api_base,
    }  # fmt: skip


def _queued(database_url: str) -> list[str]:
    async def read() -> list[str]:
        engine = create_engine(database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                return list(await session.scalars(select(OutboxEmail.to_address)))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_reconcile_on_a_dev_install_alerts_with_the_dev_servers_key(
    settings_factory: Callable[..., Settings], stripe_services: StripeServices, tmp_path: Path
) -> None:
    url, env = _an_alarming_month(settings_factory, stripe_services)
    development_secret_key(tmp_path)  # what `saassy dev` made in its data dir
    result = invoke("billing", "reconcile", env={**env, "SAASSY_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1, result.output
    assert "do not reconcile: staff are e-mailed" in result.output
    assert "SAASSY_SECRET_KEY" not in result.output
    assert _queued(url) == ["staff@example.com"]


def test_reconcile_without_any_secret_key_prints_the_month_then_says_no_email(
    settings_factory: Callable[..., Settings], stripe_services: StripeServices, tmp_path: Path
) -> None:
    url, env = _an_alarming_month(settings_factory, stripe_services)
    result = invoke("billing", "reconcile", "--json", env={**env, "SAASSY_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1, result.output
    assert '"alarming": true' in result.output  # the month, printed before the note
    assert (
        result.output.strip()
        .splitlines()[-1]
        .startswith("staff were not e-mailed: SAASSY_SECRET_KEY is not set")
    )
    assert not (tmp_path / "secret.key").exists()  # never made here: the server would not have it
    assert _queued(url) == []


def test_the_reconcile_table_is_whole_when_piped(
    settings_factory: Callable[..., Settings], stripe_services: StripeServices, tmp_path: Path
) -> None:
    url, env = _an_alarming_month(settings_factory, stripe_services)
    long_name = "Acme Robotics International Holdings of Somewhere Far Away Limited"
    asyncio.run(_rename_organizations(url, long_name))
    result = invoke("billing", "reconcile", env={**env, "SAASSY_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1, result.output
    assert "ledger - Stripe" in result.output
    rows = [line for line in result.output.splitlines() if line.startswith(f"│ {long_name}")]
    assert rows, result.output  # the whole name on the line, nothing cut or wrapped
    assert all(row.rstrip().endswith("? │") for row in rows), rows


async def _rename_organizations(database_url: str, name: str) -> None:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            for organization in (await session.scalars(select(Organization))).all():
                organization.name = name
    finally:
        await engine.dispose()
