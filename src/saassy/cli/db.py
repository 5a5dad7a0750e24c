"""`saassy db`: the database schema."""

from __future__ import annotations

from typing import Annotated

import typer

from saassy.cli.common import ConfigOption, DataDirOption, console

app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)


@app.command()
def upgrade(
    revision: Annotated[str, typer.Option(help="The alembic revision to reach.")] = "head",
    data_dir: DataDirOption = None,
    config: ConfigOption = None,
) -> None:
    """Migrate the database (SAASSY_DATABASE_URL, else the embedded one) to a revision."""
    from alembic.script import ScriptDirectory

    from saassy.cli.settings import reporting_errors, say_database, settings_from
    from saassy.kit.migrate import alembic_config, upgrade_database

    settings = settings_from(config=config, data_dir=data_dir)
    url = settings.resolved_database_url
    say_database(settings)
    with reporting_errors():
        # An unknown revision fails here, before anything connects to the database.
        ScriptDirectory.from_config(alembic_config(url)).get_revisions(revision)
        upgrade_database(url, revision)
    console.print(f"database is at revision {revision}")
