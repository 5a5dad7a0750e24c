"""Time in one place, always timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored datetime is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def bound_as_utc(value: datetime) -> datetime:
    """A time filter's bound in UTC. A bound at the very edge of what a datetime holds, such as
    year 1 with an offset east of UTC or 9999-12-31 with one west of it, lies before or after
    any time it can be compared with: it becomes the earliest or latest UTC datetime instead of
    overflowing."""
    try:
        return as_utc(value)
    except OverflowError:
        edge = datetime.min if value.year == datetime.min.year else datetime.max
        return edge.replace(tzinfo=UTC)


def month_start(moment: datetime) -> date:
    return date(moment.year, moment.month, 1)


def next_month_start(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)
