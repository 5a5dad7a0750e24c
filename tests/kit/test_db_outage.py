"""Which database errors mean "out of reach" (503, wait and retry) and which are answers."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from saassy.kit.db_outage import is_database_outage


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
