"""SQLite for the async engine, run on the event loop's own thread (driver `sqlite+inline`).

aiosqlite sends every statement to a thread and back: a hand-off each way and then a wait for
the loop to come round, while the transaction holds SQLite's one write lock. Our statements take
a fraction of a millisecond, far less than that round trip on a busy loop, so they run inline:
the plain `sqlite3` driver, called from SQLAlchemy's greenlet on the loop thread.

What must not block the loop is a wait for the lock, which another process (the CLI, a second
server) may hold. Every transaction takes the lock at BEGIN IMMEDIATE, so that is the one place
that waits, and it waits asynchronously: SQLite's busy handler is off, and a busy BEGIN sleeps on
the loop and tries again. Waiters within the process queue in the pool (one connection).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util.concurrency import await_, in_greenlet

DRIVER = "inline"
LOCK_WAIT_S = 30.0
FIRST_PAUSE_S = 0.001
LONGEST_PAUSE_S = 0.05


def _busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or "locked" in str(error)


class _Cursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """SQLAlchemy's asyncio results call this on async drivers' cursors; nothing to do."""


class _Connection(sqlite3.Connection):
    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    driver = DRIVER
    is_async = True
    supports_statement_cache = True

    def __init__(self, sqlite_begin: str = "IMMEDIATE", **kwargs: Any) -> None:
        """`sqlite_begin="DEFERRED"`: an observer's engine (reads only) that takes no write
        lock, so it never makes the server's transactions wait."""
        super().__init__(**kwargs)
        if sqlite_begin not in ("IMMEDIATE", "DEFERRED"):
            raise ValueError(f"sqlite_begin: {sqlite_begin!r} is not IMMEDIATE or DEFERRED")
        self._begin = f"BEGIN {sqlite_begin}"

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        kwargs["factory"] = _Connection
        return args, kwargs

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # The async pool: a request waiting for the connection awaits, it does not block.
        return pool.AsyncAdaptedQueuePool if cls._is_url_file_db(url) else pool.StaticPool

    def on_connect(self) -> Any:
        inherited = super().on_connect()

        def configure(connection: Any) -> None:
            if inherited is not None:
                inherited(connection)
            # SQLAlchemy's do_begin below issues BEGIN; the driver must not add its own.
            connection.isolation_level = None
            connection.execute("PRAGMA busy_timeout=0")  # wait in do_begin, not in SQLite
            _with_lock_retries(lambda: connection.execute("PRAGMA journal_mode=WAL"))
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")

        return configure

    # SQLAlchemy's AsyncConnection insists that a statement awaited something (else it assumes a
    # sync driver by mistake): hand it a coroutine that finishes at once. A greenlet switch, not
    # a loop turn.
    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        _awaited()
        cursor.execute(statement, parameters)

    def do_executemany(
        self, cursor: Any, statement: Any, parameters: Any, context: Any = None
    ) -> None:
        _awaited()
        cursor.executemany(statement, parameters)

    def do_execute_no_params(self, cursor: Any, statement: Any, context: Any = None) -> None:
        _awaited()
        cursor.execute(statement)

    def do_begin(self, dbapi_connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that reads and then writes can
        # fail with SQLITE_BUSY instead of waiting, which would break atomic quota reservations.
        _with_lock_retries(lambda: dbapi_connection.execute(self._begin))


async def _at_once() -> None:
    return None


def _awaited() -> None:
    if in_greenlet():
        await_(_at_once())


def _with_lock_retries(statement: Any) -> None:
    """Run `statement`; while another process holds the lock, sleep without blocking the loop."""
    deadline = time.monotonic() + LOCK_WAIT_S
    pause = FIRST_PAUSE_S
    while True:
        try:
            statement()
            return
        except sqlite3.OperationalError as error:
            if not _busy(error) or time.monotonic() + pause > deadline:
                raise
        if in_greenlet():
            await_(asyncio.sleep(pause))
        else:  # a plain synchronous caller (no loop to keep free)
            time.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE_S)


registry.register(f"sqlite.{DRIVER}", __name__, "InlineSQLiteDialect")
