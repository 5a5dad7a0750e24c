"""The `saassy` command: run the servers, migrate the database, administer accounts and the
vault (server commands), and use a Saassy API as a customer (client commands).

Client commands import only typer, rich, httpx and the small client modules, so that each call
starts in a fraction of a second; server commands import the app inside their functions.
"""

from __future__ import annotations

import typer

from saassy import __version__
from saassy.cli import (
    admin,
    api_keys,
    billing,
    catalog,
    db,
    login,
    scale,
    schedules,
    secrets,
    serve,
    tasks,
    vault,
    webhooks,
)
from saassy.cli.common import console

app = typer.Typer(
    name="saassy",
    help="Saassy: launch a SaaS that runs your customers' tasks in sandboxes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
SERVER = "Run and administer (on the server)"
CLIENT = "Use the API (as a customer)"

app.command("dev", rich_help_panel=SERVER)(serve.dev)
app.command("api", rich_help_panel=SERVER)(serve.api)
app.command("worker", rich_help_panel=SERVER)(scale.worker)
app.command("scheduler", rich_help_panel=SERVER)(scale.scheduler)
app.command("metrics", rich_help_panel=SERVER)(serve.metrics)
app.add_typer(db.app, name="db", rich_help_panel=SERVER)
app.add_typer(admin.app, name="admin", rich_help_panel=SERVER)
app.add_typer(vault.app, name="vault", rich_help_panel=SERVER)
app.add_typer(billing.app, name="billing", rich_help_panel=SERVER)
app.command("login", rich_help_panel=CLIENT)(login.login)
app.command("logout", rich_help_panel=CLIENT)(login.logout)
app.add_typer(tasks.app, name="tasks", rich_help_panel=CLIENT)
app.command("task-types", rich_help_panel=CLIENT)(catalog.task_types)
app.command("plans", rich_help_panel=CLIENT)(catalog.plans)
app.command("usage", rich_help_panel=CLIENT)(catalog.usage)
app.add_typer(api_keys.app, name="api-keys", rich_help_panel=CLIENT)
app.add_typer(secrets.app, name="secrets", rich_help_panel=CLIENT)
app.add_typer(schedules.app, name="schedules", rich_help_panel=CLIENT)
app.add_typer(webhooks.app, name="webhooks", rich_help_panel=CLIENT)


@app.command()
def version() -> None:
    """Print the installed version of Saassy."""
    console.print(f"saassy {__version__}")


def main() -> None:
    """Entry point of the `saassy` console script."""
    app()
