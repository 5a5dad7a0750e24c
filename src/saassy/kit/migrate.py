"""Programmatic alembic: `saassy db upgrade`, `saassy dev` and the tests all come through here."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from saassy.kit.db import async_database_url, create_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


class SchemaNotCurrent(Exception):
    """The database's schema is not the one this version needs; the message says what to do."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option(
        "file_template",
        "%%(year)d%%(month).2d%%(day).2d_%%(hour).2d%%(minute).2d_%%(rev)s_%%(slug)s",
    )
    url = async_database_url(database_url).render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe to run on every start (no-op when current)."""
    database: Path | None = None
    if database_url.startswith("sqlite"):
        path = async_database_url(database_url).database
        if path and path != ":memory:":
            database = Path(path)
            database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)
    if database is not None and database.exists():
        database.chmod(0o600)  # other local users have no business reading it


def require_current_schema(database_url: str) -> None:
    """SchemaNotCurrent unless the database is at this version's head revision.

    For servers that never migrate by themselves (`saassy api`): one line that names the
    database (without its password) and what to do, instead of a failing first request.
    """
    shown = make_url(database_url).render_as_string(hide_password=True)
    script = ScriptDirectory.from_config(alembic_config(database_url))
    heads = set(script.get_heads())
    current = set(_current_heads(database_url))
    if current == heads:
        return
    wanted = ", ".join(sorted(heads))
    if not current:
        raise SchemaNotCurrent(
            f"the database {shown} has no schema yet: run `saassy db upgrade` first"
        )
    at = ", ".join(sorted(current))
    if any(not _known(script, revision) for revision in current):
        raise SchemaNotCurrent(
            f"the database {shown} is at revision {at}, which this version of Saassy does not "
            f"know (migrated by a newer version?); it needs {wanted}"
        )
    raise SchemaNotCurrent(
        f"the database {shown} is at revision {at}, behind this version's {wanted}: "
        "run `saassy db upgrade` first"
    )


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def _current_heads(database_url: str) -> tuple[str, ...]:
    if database_url.startswith("sqlite"):
        path = async_database_url(database_url).database
        # Connecting would create the file: a missing one simply has no schema.
        if path and path != ":memory:" and not Path(path).exists():
            return ()
    return asyncio.run(_heads_in_database(database_url))


async def _heads_in_database(database_url: str) -> tuple[str, ...]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_heads_of)
    finally:
        await engine.dispose()


def _heads_of(connection: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection).get_current_heads()
