"""SQLite on the loop's thread: a lock held by another process is awaited, never blocked on."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from saassy.kit import sqlite
from saassy.kit.db import async_database_url, create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite:///{tmp_path / 'inline.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE entries (n INTEGER)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another writer on the same file, as the CLI or a second server would be."""
    connection = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    yield connection
    connection.close()


async def insert(engine: AsyncEngine, n: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO entries VALUES (:n)"), {"n": n})


async def test_a_lock_held_elsewhere_is_awaited_while_the_loop_runs_on(
    engine: AsyncEngine, elsewhere: sqlite3.Connection
) -> None:
    elsewhere.execute("BEGIN IMMEDIATE")
    elsewhere.execute("INSERT INTO entries VALUES (1)")
    writing = asyncio.create_task(insert(engine, 2))
    ticks = 0
    for _ in range(30):
        await asyncio.sleep(0.01)
        ticks += 1
    assert not writing.done()
    elsewhere.execute("COMMIT")
    async with asyncio.timeout(5):
        await writing
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT n FROM entries ORDER BY n"))).scalars().all()
    assert rows == [1, 2]
    assert ticks == 30


async def test_a_lock_held_past_the_wait_fails_and_writes_nothing(
    engine: AsyncEngine, elsewhere: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "LOCK_WAIT_S", 0.2)
    elsewhere.execute("BEGIN IMMEDIATE")
    with pytest.raises(OperationalError, match="locked"):
        await insert(engine, 3)
    elsewhere.execute("ROLLBACK")
    await insert(engine, 4)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT n FROM entries"))).scalars().all()
    assert rows == [4]


async def test_statements_run_on_the_loop_thread(engine: AsyncEngine) -> None:
    import threading

    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        threads: list[int] = []
        raw.driver_connection.create_function(  # type: ignore[union-attr]
            "thread_id", 0, lambda: threads.append(threading.get_ident()) or 0
        )
        await conn.execute(text("SELECT thread_id()"))
    assert threads == [threading.get_ident()]


async def test_an_observer_engine_reads_without_taking_the_write_lock(
    engine: AsyncEngine, tmp_path: Path, elsewhere: sqlite3.Connection
) -> None:
    observer = create_async_engine(
        async_database_url(f"sqlite:///{tmp_path / 'inline.db'}"), sqlite_begin="DEFERRED"
    )
    elsewhere.execute("BEGIN IMMEDIATE")  # a writer at work: the observer still reads
    try:
        async with asyncio.timeout(5), observer.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM entries"))).scalar() == 0
    finally:
        elsewhere.execute("ROLLBACK")
        await observer.dispose()
