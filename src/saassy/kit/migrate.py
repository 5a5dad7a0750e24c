"""Programmatic alembic: `saassy db upgrade`, `saassy dev` and the tests all come through here."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from saassy.kit.db import async_database_url

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


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
    if database_url.startswith("sqlite"):
        path = async_database_url(database_url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(database_url), revision)
