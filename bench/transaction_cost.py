"""What group commit could save a submission: a row's CPU in a transaction of its own, against
rows gathered 16 to a transaction, each in a savepoint (so one refusal would not fail the others)
or bare (what only a batch that can never partly fail may do).

    .venv/bin/python -m bench.transaction_cost [--rows 3000] [--runs 3]
        [--database-url postgresql://postgres@127.0.0.1:5432/scratch_db]

Through the platform's own engine (`saassy.kit.db.create_engine`: on SQLite one connection,
`BEGIN IMMEDIATE`; on PostgreSQL asyncpg with `pool_pre_ping`), one INSERT per row, this
process's CPU per row. SQLite by default, in a temporary file; on PostgreSQL a table of its own,
dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.kit.db import create_engine

BATCH = 16


async def measure(database_url: str, rows: int, runs: int) -> list[dict[str, float]]:
    engine = create_engine(database_url)
    sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
    table = f"bench_rows_{secrets.token_hex(4)}"
    insert = text(f"INSERT INTO {table} (value) VALUES ('x')")  # noqa: S608 - our own name

    async def own_transactions(count: int) -> None:
        for _ in range(count):
            async with sessionmaker() as session, session.begin():
                await session.execute(insert)

    async def batched(count: int, savepoints: bool) -> None:
        for _ in range(count // BATCH):
            async with sessionmaker() as session, session.begin():
                for _ in range(BATCH):
                    if savepoints:
                        async with session.begin_nested():
                            await session.execute(insert)
                    else:
                        await session.execute(insert)

    async def cpu_ms_per_row(run: Callable[[int], Awaitable[None]]) -> float:
        started = time.process_time()
        await run(rows)
        return (time.process_time() - started) * 1000 / (rows // BATCH * BATCH)

    async def create(session: AsyncSession) -> None:
        await session.execute(text(f"CREATE TABLE {table} (value TEXT)"))

    try:
        async with sessionmaker() as session, session.begin():
            await create(session)
        await own_transactions(BATCH)  # warm the pool and the statement caches
        results = []
        for _ in range(runs):
            results.append(
                {
                    "own_transaction": await cpu_ms_per_row(own_transactions),
                    "batched_with_savepoints": await cpu_ms_per_row(
                        lambda n: batched(n, savepoints=True)
                    ),
                    "batched_bare": await cpu_ms_per_row(lambda n: batched(n, savepoints=False)),
                }
            )
        return results
    finally:
        async with sessionmaker() as session, session.begin():
            await session.execute(text(f"DROP TABLE IF EXISTS {table}"))
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.transaction_cost", description=__doc__)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", help="Default: SQLite in a temporary file.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="saassy-bench-tx-") as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'rows.db'}"
        results = asyncio.run(measure(url, args.rows, args.runs))
    print(f"CPU per row, ms ({args.rows} rows a run, {BATCH} to a batch):")
    for result in results:
        print("  " + ", ".join(f"{name} {value:.3f}" for name, value in result.items()))


if __name__ == "__main__":
    main()
