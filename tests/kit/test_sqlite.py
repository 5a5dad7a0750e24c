"""SQLite on the loop's thread: a lock held by another process is awaited, never blocked on."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
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


async def test_the_wal_is_checkpointed_on_a_thread_not_in_a_commit_on_the_loop(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's own threshold (1,000 WAL pages) would copy the WAL back, and sync, inside the
    COMMIT that crossed it, on the loop; here a thread does it after enough commits."""
    database = tmp_path / "inline.db"
    threads: list[int] = []
    done = threading.Event()
    checkpoint = sqlite.Checkpoints.checkpoint

    def recorded(self: sqlite.Checkpoints) -> None:
        threads.append(threading.get_ident())
        checkpoint(self)
        done.set()

    monkeypatch.setattr(sqlite.Checkpoints, "checkpoint", recorded)
    checkpoints = engine.sync_engine.dialect.checkpoints  # type: ignore[attr-defined]
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE blobs (data BLOB)"))
    empty = database.stat().st_size
    blob = b"x" * 100_000  # ~25 pages a commit: ~2,400 below, all in the WAL
    for _ in range(sqlite.CHECKPOINT_AFTER_COMMITS - 1 - checkpoints.commits):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO blobs VALUES (:d)"), {"d": blob})
    for _ in range(3):  # reads commit too, and do not count
        async with engine.begin() as conn:
            await conn.execute(text("SELECT count(*) FROM blobs"))
    assert database.stat().st_size == empty  # no commit copied the WAL back
    assert threads == []
    async with engine.begin() as conn:  # the commit that asks for one
        await conn.execute(text("INSERT INTO blobs VALUES (:d)"), {"d": blob})
    assert await asyncio.to_thread(done.wait, 10)
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()
    assert database.stat().st_size > (sqlite.CHECKPOINT_AFTER_COMMITS - 3) * len(blob)


async def test_a_commit_done_is_not_failed_by_what_follows_it(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cannot_start(self: sqlite.Checkpoints, total_changes: int) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(sqlite.Checkpoints, "after_commit", cannot_start)
    await insert(engine, 5)  # no error: the row is committed, and said to be
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT n FROM entries"))).scalars().all() == [5]


async def test_a_checkpoint_does_not_make_a_database_that_went_again(tmp_path: Path) -> None:
    gone = tmp_path / "gone.db"
    sqlite.Checkpoints(str(gone)).checkpoint()  # logs that it failed
    assert not gone.exists()
