"""A database of the bench's own on a shared PostgreSQL server: created, migrated, dropped."""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from saassy.kit.migrate import upgrade_database

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def add_postgres_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("SAASSY_BENCH_POSTGRES_URL", DEFAULT_SERVER),
        help="A PostgreSQL server (any database on it): the bench creates its own and drops it.",
    )


@contextmanager
def scratch_database(server_url: str, label: str) -> Iterator[str]:
    """The URL of a new, migrated database on the server of `server_url`, dropped afterwards.
    Enter it outside an event loop (the migration runs its own)."""
    name = f"saassy_bench_{label}_{uuid.uuid4().hex[:8]}"
    admin = make_url(server_url).set(drivername="postgresql")
    asyncio.run(_admin(admin.render_as_string(hide_password=False), f'CREATE DATABASE "{name}"'))
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_database(url)
        yield url
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        asyncio.run(_admin(admin.render_as_string(hide_password=False), drop))


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()
