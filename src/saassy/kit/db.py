"""Engines and the unit of work: one session per request or job; services only flush."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from saassy.kit import sqlite
from saassy.kit.sqlite import LOCK_WAIT_S


def async_database_url(url: str) -> URL:
    """Accept URLs as operators write them (`postgresql://`, `sqlite:///`) and pick the driver."""
    parsed = make_url(url)
    drivers = {"postgresql": "asyncpg", "postgres": "asyncpg", "sqlite": sqlite.DRIVER}
    backend = parsed.get_backend_name()
    if backend == "postgres":
        parsed = parsed.set(drivername="postgresql")
        backend = "postgresql"
    if backend not in drivers:
        raise ValueError(f"unsupported database {backend!r}: use postgresql:// or sqlite:///")
    return parsed.set(drivername=f"{backend}+{drivers[backend]}")


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str, *, pool_size: int = 20, **kwargs: Any) -> AsyncEngine:
    """An async engine; on SQLite, WAL and one connection, so writers queue without busy sleeps."""
    async_url = async_database_url(url)
    if async_url.get_backend_name() != "sqlite":
        # pool_pre_ping costs three round trips per checkout on asyncpg, but a connection the
        # server dropped (restart, failover, idle timeout) must not fail the request that gets it.
        return create_async_engine(
            async_url,
            pool_size=pool_size,
            max_overflow=pool_size // 2,
            pool_pre_ping=True,
            # Parameters are customers' data (addresses, task input, log text): never in an
            # error message, which may go to a log or to error tracking.
            hide_parameters=True,
            **kwargs,
        )

    # Every transaction takes SQLite's write lock up front (BEGIN IMMEDIATE, kit/sqlite.py), so
    # two connections never work at once anyway; with several, the waiters would sleep in
    # SQLite's busy handler and convoy. One connection makes them wait in the pool's FIFO queue
    # instead, woken the moment the holder commits.
    kwargs.setdefault("pool_size", 1)
    kwargs.setdefault("max_overflow", 0)
    kwargs.setdefault("pool_timeout", LOCK_WAIT_S)
    return create_async_engine(async_url, hide_parameters=True, **kwargs)


async def yield_sqlite_lock(session: AsyncSession) -> None:
    """Commit now on SQLite, where any transaction holds the only write lock (and connection):
    the request's work that follows without the database must not keep every other writer
    waiting. Elsewhere a no-op: the transaction goes on."""
    bind = session.get_bind()
    if bind.dialect.name == "sqlite" and session.in_transaction():
        await session.commit()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """Commit when the work finished, roll back when it raised."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()
