"""Where a benchmark run lives: a scratch dir, the bench catalog, a migrated database."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from bench.echo import CPUS, DISK_MB, ECHO_ARGV, MEMORY_MB, PIDS, TIMEOUT_S
from saassy.kit.db import create_engine
from saassy.kit.migrate import upgrade_database

# A plan that never limits the benchmark: unlimited tasks, concurrency above the executor's,
# an API rate limit no client reaches. The echo task type is the worker program every compared
# path runs (bench/echo.py); the no-op, /bin/true, is left to the phases that time the engine's
# own work (logs, the task list, the claim).
BENCH_CATALOG = f"""\
default_plan = "bench"

[plans.bench]
name = "Bench"
max_concurrent_tasks = 100000
max_task_duration_s = 3600
resources = {{ memory_mb = 1024, cpus = 2 }}
api_rate_limit = "100000000/minute"

[task_types.noop]
title = "No-op"
description = "/bin/true in the sandbox: measures the engine, not the work."
command = ["/bin/true"]
default_timeout_s = 30
max_timeout_s = 60
retries = 0
resources = {{ memory_mb = 128, cpus = 0.5, pids = 32, disk_mb = 16 }}

[task_types.hold]
title = "Hold"
description = "Sleeps until canceled: its tenant has a task running (no reserved slot)."
command = ["/bin/sleep", "3600"]
default_timeout_s = 3600
max_timeout_s = 3600
retries = 0
resources = {{ memory_mb = 32, cpus = 0.1, pids = 8, disk_mb = 8 }}

[task_types.echo]
title = "Echo"
description = "A small Python program: reads its input, writes it back with its start time."
command = {json.dumps(list(ECHO_ARGV))}
default_timeout_s = {TIMEOUT_S}
max_timeout_s = 60
retries = 0
resources = {{ memory_mb = {MEMORY_MB}, cpus = {CPUS}, pids = {PIDS}, disk_mb = {DISK_MB} }}
"""


@dataclass(frozen=True)
class Stage:
    root: Path
    database_url: str
    parallelism: int

    @property
    def config(self) -> Path:
        return self.root / "saassy.toml"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def is_postgresql(self) -> bool:
        return self.database_url.startswith("postgres")

    def server_env(self) -> dict[str, str]:
        """SAASSY_* for the server process: the bench catalog, this database, the parallelism."""
        return {
            "SAASSY_ENV": "development",
            "SAASSY_CONFIG": str(self.config),
            "SAASSY_DATA_DIR": str(self.data_dir),
            "SAASSY_DATABASE_URL": self.database_url,
            "SAASSY_EXECUTOR_PARALLELISM": str(self.parallelism),
            # The server signs tokens: a random key per stage, as a deployment would have one.
            "SAASSY_SECRET_KEY": secrets.token_urlsafe(48),
        }


@contextmanager
def scratch_stage(
    parallelism: int, database_url: str | None, label: str, catalog: str = BENCH_CATALOG
) -> Iterator[Stage]:
    """A fresh scratch dir and database (SQLite in the dir, or a reset PostgreSQL schema),
    removed afterwards. Migrates: enter it outside an event loop."""
    root = Path(tempfile.mkdtemp(prefix=f"saassy-bench-{label}-"))
    try:
        (root / "saassy.toml").write_text(catalog)
        url = database_url or f"sqlite:///{root / 'saassy.db'}"
        if url.startswith("postgres"):
            asyncio.run(_reset_schema(url))
        upgrade_database(url)
        yield Stage(root=root, database_url=url, parallelism=parallelism)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SAASSY_BENCH_DATABASE_URL"),
        help="PostgreSQL URL (its public schema is DROPPED); default: SQLite in a scratch dir.",
    )


async def _reset_schema(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
