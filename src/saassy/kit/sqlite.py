"""SQLite for the async engine, run on the event loop's own thread (driver `sqlite+inline`).

aiosqlite sends every statement to a thread and back: a hand-off each way and then a wait for
the loop to come round, while the transaction holds SQLite's one write lock. Our statements take
a fraction of a millisecond, far less than that round trip on a busy loop, so they run inline:
the plain `sqlite3` driver, called from SQLAlchemy's greenlet on the loop thread.

What must not block the loop is a wait for the lock, which another process (the CLI, a second
server) may hold. Every transaction takes the lock at BEGIN IMMEDIATE, so that is the one place
that waits, and it waits asynchronously: SQLite's busy handler is off, and a busy BEGIN sleeps on
the loop and tries again. Waiters within the process queue in the pool (one connection).

Nor must a checkpoint, mostly: SQLite copies the WAL back into the database inside whichever
COMMIT crosses its threshold (1,000 pages), and syncs both files to disk there, a few
milliseconds (more on a busy disk) during which every request and sandbox of the server waited.
A thread of its own does the copying now (`Checkpoints`); a COMMIT checkpoints only past
`BACKSTOP_PAGES`, copying what little is left and starting the WAL over.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import urllib.parse
from typing import Any

import structlog
from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util.concurrency import await_, in_greenlet

DRIVER = "inline"
LOCK_WAIT_S = 30.0
FIRST_PAUSE_S = 0.001
LONGEST_PAUSE_S = 0.05
# SQLite's own threshold is 1,000 WAL pages; a commit of ours writes ~10.
CHECKPOINT_AFTER_COMMITS = 100
BACKSTOP_PAGES = 10_000  # ~40 MB of WAL: the loop's COMMIT checkpoints only past this
IDLE_S = 30.0  # the checkpoint thread ends after this long without work

log = structlog.get_logger(__name__)


def _busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY or "locked" in str(error)


class _Cursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """SQLAlchemy's asyncio results call this on async drivers' cursors; nothing to do."""


class _Connection(sqlite3.Connection):
    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)


class Checkpoints:
    """The WAL checkpoints of one database file, on a thread of their own with a connection of
    its own: a PASSIVE checkpoint copies what no reader still needs and waits for nobody, and
    the commits on the loop go on meanwhile (SQLite releases the interpreter lock while it
    works). Asked for after every `CHECKPOINT_AFTER_COMMITS` commits that wrote; the thread
    ends after `IDLE_S` without work and starts again when asked.

    Commits keep coming while it copies, so it seldom leaves nothing to copy, and only then
    can SQLite start the WAL over: the WAL grows to `BACKSTOP_PAGES`, where a commit on the
    loop checkpoints the little the thread has not copied and starts it over.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.commits = 0  # that wrote, since the last checkpoint was asked for
        self._changes = 0  # the connection's total_changes at the last commit
        self._asked = threading.Event()
        self._worker: threading.Thread | None = None
        self._owner = 0  # the pid that started the worker (a fork's child has none)

    def after_commit(self, total_changes: int) -> None:
        if total_changes == self._changes:  # nothing written (a read's transaction)
            return
        self._changes = total_changes
        self.commits += 1
        if self.commits < CHECKPOINT_AFTER_COMMITS:
            return
        self.commits = 0
        self._asked.set()
        worker = self._worker
        if worker is None or not worker.is_alive() or self._owner != os.getpid():
            self._owner = os.getpid()
            self._worker = threading.Thread(target=self._work, name="sqlite wal", daemon=True)
            self._worker.start()

    def _work(self) -> None:
        while self._asked.wait(IDLE_S):
            self._asked.clear()
            self.checkpoint()

    def checkpoint(self) -> None:
        # mode=rw: a database moved or removed meanwhile is not made again, empty.
        target = f"file:{urllib.parse.quote(self.path)}?mode=rw"
        try:
            connection = sqlite3.connect(target, uri=True, timeout=0, isolation_level=None)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                connection.close()
        except sqlite3.Error as error:  # gone, or a disk error: the next one tries again
            log.warning("sqlite.checkpoint_failed", error=str(error))


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
        self.checkpoints: Checkpoints | None = None  # a file's (not an in-memory database's)

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        kwargs["factory"] = _Connection
        # A file named plainly (not a URI's memory or read-only file), written by this engine.
        if self._is_url_file_db(url) and not kwargs.get("uri") and self._begin != "BEGIN DEFERRED":
            self.checkpoints = Checkpoints(args[0])
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
            if self.checkpoints is not None:
                connection.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")

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

    def do_commit(self, dbapi_connection: Any) -> None:
        dbapi_connection.commit()
        if self.checkpoints is not None:
            try:
                self.checkpoints.after_commit(dbapi_connection.total_changes)
            except Exception:  # the commit is done: nothing after it may say it failed
                log.exception("sqlite.checkpoint_not_asked")

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
