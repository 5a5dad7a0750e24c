"""`saassy billing`: the catalog's plans and meters made in Stripe, usage reported to its
meters, a month reconciled (docs/billing.md).

Straight on the database and Stripe, with the settings `saassy api` runs with.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from saassy.cli.common import ConfigOption, DataDirOption, console, errors, fail

if TYPE_CHECKING:
    import stripe
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from saassy.billing.reconciliation import Reconciliation
    from saassy.config import Settings

app = typer.Typer(help="Billing through Stripe.", no_args_is_help=True)

# Wider than any table: rich sizes a table to its content up to the console's width.
UNCUT_WIDTH = 10_000
OFF = "billing is off: set SAASSY_STRIPE_SECRET_KEY (and SAASSY_STRIPE_WEBHOOK_SECRET)"


@contextmanager
def reporting_stripe_errors(settings: Settings) -> Iterator[None]:
    """Stripe's failures as one line: the SDK's messages run over several, and an unreachable
    server is not a refusal (nor something to write to support@stripe.com about)."""
    import stripe

    try:
        yield
    except stripe.APIConnectionError:
        where = settings.stripe_api_base or "api.stripe.com"
        fail(f"Stripe did not answer at {where}: check the network and SAASSY_STRIPE_API_BASE")
    except stripe.StripeError as exc:
        said = (exc.user_message or "").strip().splitlines()
        fail(f"Stripe refused: {said[0] if said else type(exc).__name__}")


@app.command("sync")
def sync(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Create or update Stripe's Products, Prices and Billing Meters from saassy.toml;
    a second run changes nothing."""
    import asyncio

    from rich.table import Table

    from saassy.billing.catalog_sync import (
        Action,
        CatalogOfAnotherAccount,
        SyncResult,
        sync_catalog,
    )
    from saassy.billing.stripe_api import billing_enabled
    from saassy.billing.stripe_connection import open_stripe_client
    from saassy.cli.settings import reporting_errors, say_database, settings_from
    from saassy.kit.db import create_engine, create_sessionmaker

    settings = settings_from(config=config, data_dir=data_dir)
    if not billing_enabled(settings):
        fail(OFF)
    say_database(settings)

    async def run() -> SyncResult:
        engine = create_engine(settings.resolved_database_url)
        try:
            async with open_stripe_client(settings) as client:
                assert client is not None  # billing is on
                async with create_sessionmaker(engine)() as session, session.begin():
                    return await sync_catalog(session, client, settings.catalog)
        finally:
            await engine.dispose()

    with reporting_errors(), reporting_stripe_errors(settings):
        try:
            result = asyncio.run(run())
        except CatalogOfAnotherAccount as exc:
            fail(str(exc))
    lines = result.lines
    if result.replaced:
        console.print(
            "The stored Stripe ids were from another Stripe account or mode (test or live) and "
            "nothing was sold yet in this database: they were replaced by new objects."
        )
    table = Table("kind", "key", "action", "stripe id", box=None)
    for line in lines:
        style = "dim" if line.action is Action.unchanged else ""
        table.add_row(line.kind, line.key, line.action.value, line.stripe_id, style=style)
    console.print(table)
    changed = sum(line.action is not Action.unchanged for line in lines)
    console.print(f"{changed} change{'s' if changed != 1 else ''} in Stripe")


@app.command("report-usage")
def report_usage(
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep reporting (as `saassy api` does) until stopped.")
    ] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Write the meter reports of closed windows and send the due ones to Stripe, once."""
    import asyncio

    from saassy.billing.reporting import UsageRound, run_meter_reporting
    from saassy.billing.reporting import report_usage as one_pass
    from saassy.billing.stripe_api import billing_enabled
    from saassy.billing.stripe_connection import open_stripe_client
    from saassy.cli.settings import reporting_errors, say_database, settings_from
    from saassy.kit.db import create_engine, create_sessionmaker
    from saassy.kit.time import utcnow

    settings = settings_from(config=config, data_dir=data_dir)
    if not billing_enabled(settings):
        fail(OFF)
    say_database(settings)

    async def run() -> None:
        engine = create_engine(settings.resolved_database_url)
        sessionmaker = create_sessionmaker(engine)
        try:
            async with open_stripe_client(settings) as client:
                assert client is not None  # billing is on
                await report(sessionmaker, client)
        finally:
            await engine.dispose()

    async def report(
        sessionmaker: async_sessionmaker[AsyncSession], client: stripe.StripeClient
    ) -> None:
        if follow:
            where = settings.stripe_api_base or "api.stripe.com"
            console.print(
                f"following: reporting usage to Stripe at {where} as windows close "
                f"(every {settings.billing_window_s} s) until stopped"
            )
            await run_meter_reporting(
                sessionmaker, settings, client, reconcile_daily=False, on_round=say_round
            )
        say(await one_pass(sessionmaker, settings, client))

    def say(done: UsageRound) -> None:
        console.print(
            f"{done.written} reports written; {done.sending.sent} sent, "
            f"{done.sending.retried} to retry, {done.sending.failed} refused"
        )

    def say_round(done: UsageRound) -> None:
        """A line for each round that wrote or sent something, with the time: quiet between."""
        sending = done.sending
        if done.written or sending.sent or sending.retried or sending.failed:
            console.print(f"{utcnow():%Y-%m-%d %H:%M:%S} UTC ", end="")
            say(done)

    with reporting_errors(), reporting_stripe_errors(settings):
        asyncio.run(run())


@app.command()
def reconcile(
    period: Annotated[
        str | None, typer.Option(help="The month, YYYY-MM (default: this month).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Ledger vs our reports vs Stripe per organization and meter; exit 1 on a difference."""
    import asyncio

    from saassy.billing.reconciliation import parse_period
    from saassy.billing.reporting import reconcile_and_alert
    from saassy.billing.stripe_api import billing_enabled
    from saassy.billing.stripe_connection import open_stripe_client
    from saassy.cli.settings import (
        reporting_errors,
        say_database,
        settings_from,
        with_development_key,
    )
    from saassy.kit.db import create_engine, create_sessionmaker
    from saassy.kit.time import month_start, utcnow

    settings = settings_from(config=config, data_dir=data_dir)
    # Without a client every customer's Stripe figure is unreadable: all alarming, staff e-mailed.
    if not billing_enabled(settings):
        fail(OFF)
    # Staff's e-mail is sealed with the secret key: `saassy dev`'s own on a dev install; with
    # none at all the month is still reconciled and printed, and the e-mail not queued.
    settings = with_development_key(settings)
    can_alert = settings.secret_key is not None
    with reporting_errors():
        month = parse_period(period) if period else month_start(utcnow())
    say_database(settings)

    async def run() -> Reconciliation:
        engine = create_engine(settings.resolved_database_url)
        try:
            async with open_stripe_client(settings) as client:
                return await reconcile_and_alert(
                    create_sessionmaker(engine), settings, client, month, alert=can_alert
                )
        finally:
            await engine.dispose()

    with reporting_errors(), reporting_stripe_errors(settings):
        result = asyncio.run(run())
    if as_json:
        from saassy.billing.reconciliation_schemas import ReconciliationRead

        typer.echo(json.dumps(ReconciliationRead.of(result).model_dump(mode="json"), indent=2))
    else:
        _print(result, emailed=can_alert)
    if result.alarming and not can_alert:
        errors.print(
            "staff were not e-mailed: SAASSY_SECRET_KEY is not set (it seals queued e-mail); "
            "set it as the server has it and run this again"
        )
    if result.alarming:
        raise typer.Exit(1)


def _print(result: Reconciliation, *, emailed: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{result.period:%Y-%m}, windows closed until "
        f"{result.closed_until:%Y-%m-%d %H:%M} UTC"
    )
    for column in (
        "organization",
        "meter",
        "ledger",
        "reported",
        "pending",
        "not billable",
        "carried in",
        "carried out",
        "Stripe",
        "ledger - Stripe",
    ):
        table.add_column(column, justify="left" if column in ("organization", "meter") else "right")
    for line in result.lines:
        stripe = "?" if line.stripe is None else str(line.stripe)
        gap = "?" if line.ledger_minus_stripe is None else str(line.ledger_minus_stripe)
        style = "red" if line.alarming else None
        table.add_row(
            escape(line.organization),
            line.meter.value,
            str(line.ledger),
            str(line.reported),
            str(line.pending),
            str(line.not_billable),
            str(line.carried_in),
            str(line.carried_out),
            stripe,
            gap,
            style=style,
        )
    # Piped to a file or a log, a table cut to 80 columns loses figures: as wide as it needs.
    out = console if console.is_terminal else Console(highlight=False, width=UNCUT_WIDTH)
    out.print(table)
    if result.alarming:
        told = ": staff are e-mailed" if emailed else ""
        console.print(f"[red]{len(result.alarming)} line(s) do not reconcile[/]{told}")
    else:
        console.print("every line reconciles (ledger - Stripe = 0)")
