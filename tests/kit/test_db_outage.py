"""Which database errors mean "out of reach" (503, wait and retry) and which are answers."""

from __future__ import annotations

import sqlite3

import pytest
import structlog
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from structlog.testing import capture_logs

from saassy.kit.db_outage import is_database_outage, log_failed_round


class DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (DBAPIError("SELECT 1", {}, DriverError("57P01")), True),  # admin shutdown
        (DBAPIError("SELECT 1", {}, DriverError("57P03")), True),  # starting up
        (OperationalError("SELECT 1", {}, DriverError("08006")), True),  # connection failure
        (DBAPIError("SELECT 1", {}, DriverError("40001")), False),  # serialization failure
        (IntegrityError("INSERT", {}, DriverError("23505")), False),  # unique violation
        (OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked")), False),
        (ConnectionRefusedError(111, "refused"), False),  # not raised by the driver
        (ValueError("no"), False),
    ],
)
def test_only_a_lost_connection_is_an_outage(error: Exception, outage: bool) -> None:
    assert is_database_outage(error) is outage


def test_an_invalidated_connection_is_an_outage() -> None:
    error = DBAPIError("SELECT 1", {}, DriverError("XX000"), connection_invalidated=True)
    assert is_database_outage(error)


@pytest.mark.parametrize(
    ("error", "level", "details"),
    [
        (
            DBAPIError("SELECT 1", {}, DriverError("57P01")),
            "warning",
            {"error_type": "DBAPIError"},
        ),
        (ValueError("no"), "error", {"exc_info": True}),
    ],
)
def test_a_failed_round_logs_an_outage_in_one_line_and_anything_else_with_its_traceback(
    error: Exception, level: str, details: dict[str, object]
) -> None:
    with capture_logs() as logs:
        try:
            raise error
        except Exception as exc:
            log_failed_round(structlog.get_logger("test"), "loop.round_failed", exc)
    assert logs == [{"event": "loop.round_failed", "log_level": level, **details}]
