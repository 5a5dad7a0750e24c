"""Telling a database that is out of reach from a database that said no.

A lost or refused connection (the server restarts, fails over, is unreachable) is the
platform's passing trouble: clients get 503 and retry, background loops wait and carry on.
Everything else the database raises (a constraint, a serialization failure, SQLite's busy
lock) is an answer about the work itself and keeps its own handling.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.exc import DBAPIError

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
