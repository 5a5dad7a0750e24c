"""Telling a database that is out of reach from a database that said no.

A lost or refused connection (the server restarts, fails over, is unreachable) is the
platform's passing trouble: clients get 503 and retry, background loops wait and carry on.
Everything else the database raises (a constraint, a serialization failure, SQLite's busy
lock) is an answer about the work itself and keeps its own handling.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.typing import FilteringBoundLogger

log = structlog.get_logger(__name__)
T = TypeVar("T")

# SQLSTATE classes: 08 connection exception; 57P01-57P03 admin/crash shutdown, cannot connect
# now (starting up, shutting down, in recovery).
_OUTAGE_SQLSTATES = ("08", "57P01", "57P02", "57P03")
# Raised before SQLAlchemy wraps anything: the driver could not connect at all.
_DRIVER_MODULES = ("sqlalchemy", "asyncpg")


def is_database_outage(exc: BaseException) -> bool:
    """True when `exc` means the database could not be reached or the connection was lost."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return _sqlstate(exc.orig).startswith(_OUTAGE_SQLSTATES)
    if _sqlstate(exc).startswith(_OUTAGE_SQLSTATES):  # a driver's own error at connect
        return _raised_by_the_driver(exc.__traceback__)
    # Connection refused or reset, a connect that timed out: only when the driver raised it,
    # never a socket error of something else the request talked to.
    if isinstance(exc, ConnectionError | TimeoutError):
        return _raised_by_the_driver(exc.__traceback__)
    return False


def log_failed_round(logger: FilteringBoundLogger, event: str, exc: BaseException) -> None:
    """Log a background loop's round that raised (call it where the exception is handled): a
    database out of reach is passing trouble, one warning line; anything else, its traceback."""
    if is_database_outage(exc):
        logger.warning(event, error_type=type(exc).__name__)
    else:
        logger.exception(event)


def _sqlstate(error: BaseException | None) -> str:
    state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    return state if isinstance(state, str) else ""


def _raised_by_the_driver(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.startswith(_DRIVER_MODULES):
            return True
        traceback = traceback.tb_next
    return False


class OutageWatch:
    """One log line when a loop loses the database and one when it has it back, however many
    rounds fail in between, and the wait before its next try: doubling, capped."""

    def __init__(self, loop: str, *, first_wait_s: float = 0.5, most_wait_s: float = 5.0) -> None:
        self.loop = loop
        self.first_wait_s = first_wait_s
        self.most_wait_s = most_wait_s
        self.failures = 0
        self._since = 0.0

    @property
    def out(self) -> bool:
        return self.failures > 0

    def failed(self, exc: BaseException) -> float:
        """Note a round that found the database out of reach; returns how long to wait."""
        if self.failures == 0:
            self._since = time.monotonic()
            log.warning("database.unreachable", loop=self.loop, error_type=type(exc).__name__)
        self.failures += 1
        return min(self.most_wait_s, self.first_wait_s * 2.0 ** (self.failures - 1))

    def succeeded(self) -> None:
        if self.failures:
            gone_s = round(time.monotonic() - self._since, 1)
            log.info("database.back", loop=self.loop, after_s=gone_s, failed_rounds=self.failures)
            self.failures = 0


async def through_outage(
    call: Callable[[], Awaitable[T]], watch: OutageWatch, *, give_up_after_s: float
) -> T:
    """`call()`, tried again while the database is out of reach, for up to `give_up_after_s`;
    any other error, or the outage past that, is raised."""
    deadline = time.monotonic() + give_up_after_s
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not is_database_outage(exc) or time.monotonic() >= deadline:
                raise
            await asyncio.sleep(watch.failed(exc))
            continue
        watch.succeeded()
        return result


async def probe(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    """One round trip: raises while the database is out of reach."""
    async with sessionmaker() as session:
        await session.execute(text("SELECT 1"))
