"""`saassy billing`: the catalog's plans and meters, made in Stripe (a server command)."""

from __future__ import annotations

import typer
from rich.table import Table

from saassy.cli.common import ConfigOption, DataDirOption, console, fail

app = typer.Typer(help="Sell the catalog's plans through Stripe.", no_args_is_help=True)


@app.command("sync")
def sync(data_dir: DataDirOption = None, config: ConfigOption = None) -> None:
    """Create or update Stripe's Products, Prices and Billing Meters from saassy.toml;
    a second run changes nothing."""
    import asyncio
    from contextlib import asynccontextmanager

    import stripe

    from saassy.billing.catalog_sync import Action, SyncLine, sync_catalog
    from saassy.billing.stripe_api import new_http_client, stripe_client
    from saassy.cli.settings import reporting_errors, say_database, settings_from
    from saassy.kit.db import create_engine, create_sessionmaker, session_scope

    settings = settings_from(config=config, data_dir=data_dir)
    http = new_http_client()
    client = stripe_client(settings, http)
    if client is None:
        fail("billing is off: set SAASSY_STRIPE_SECRET_KEY (and SAASSY_STRIPE_WEBHOOK_SECRET)")
    say_database(settings)
    unit_of_work = asynccontextmanager(session_scope)

    async def run() -> list[SyncLine]:
        engine = create_engine(settings.resolved_database_url)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                return await sync_catalog(session, client, settings.catalog)
        finally:
            await http.aclose()
            await engine.dispose()

    with reporting_errors():
        try:
            lines = asyncio.run(run())
        except stripe.StripeError as exc:
            fail(f"Stripe refused: {exc.user_message or type(exc).__name__}")
    table = Table("kind", "key", "action", "stripe id", box=None)
    for line in lines:
        style = "dim" if line.action is Action.unchanged else ""
        table.add_row(line.kind, line.key, line.action.value, line.stripe_id, style=style)
    console.print(table)
    changed = sum(line.action is not Action.unchanged for line in lines)
    console.print(f"{changed} change{'s' if changed != 1 else ''} in Stripe")
