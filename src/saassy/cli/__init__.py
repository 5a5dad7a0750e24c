"""The `saassy` command: run the servers, migrate the database, administer accounts and the
vault."""

from __future__ import annotations

import typer

from saassy import __version__
from saassy.cli import admin, db, serve, tasks, vault
from saassy.cli.common import console

app = typer.Typer(
    name="saassy",
    help="Saassy: launch a SaaS that runs your customers' tasks in sandboxes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
app.command("dev")(serve.dev)
app.command("api")(serve.api)
app.add_typer(db.app, name="db")
app.add_typer(admin.app, name="admin")
app.add_typer(tasks.app, name="tasks")
app.add_typer(vault.app, name="vault")


@app.command()
def version() -> None:
    """Print the installed version of Saassy."""
    console.print(f"saassy {__version__}")


def main() -> None:
    """Entry point of the `saassy` console script."""
    app()
