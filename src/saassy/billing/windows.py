"""Report windows: the slices of time usage is reported to Stripe in, and what names them.

A window is `SAASSY_BILLING_WINDOW_S` long (an hour by default) and windows tile every hour,
so every month is whole windows. A window is reported once it has closed and a margin has
passed for attempts still settling; usage that commits later goes into the next window.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from saassy.billing.meters import MeterKey
from saassy.kit.time import month_start, next_month_start

# Stripe refuses an event timestamped more than 35 days ago; an hour less leaves time to send.
STRIPE_MAX_AGE = timedelta(days=35)
SENDABLE_AGE = STRIPE_MAX_AGE - timedelta(hours=1)
MAX_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class Window:
    start: datetime
    length: timedelta

    @property
    def end(self) -> datetime:
        return self.start + self.length

    @property
    def period(self) -> date:
        """The billing month the window counts toward."""
        return month_start(self.start)

    @property
    def timestamp(self) -> int:
        """The meter event's time: the window's last second, inside it and never future."""
        return int((self.end - timedelta(seconds=1)).timestamp())

    def previous(self) -> Window:
        return Window(self.start - self.length, self.length)


def margin(length: timedelta) -> timedelta:
    """How long after a window's end it is reported: a twelfth of it, at most 5 minutes."""
    return min(length / 12, MAX_MARGIN)


def window_at(moment: datetime, length: timedelta) -> Window:
    moment = moment.astimezone(UTC)
    hour = moment.replace(minute=0, second=0, microsecond=0)
    into = (moment - hour) // length
    return Window(hour + into * length, length)


def last_closed(now: datetime, length: timedelta) -> Window:
    """The latest window whose end and margin have passed."""
    return window_at(now - margin(length), length).previous()


def windows_between(first: datetime, last: Window) -> Iterator[Window]:
    """The windows from the one starting at `first` to `last`, both included."""
    start = first
    while start <= last.start:
        yield Window(start, last.length)
        start += last.length


def month_bounds(period: date) -> tuple[datetime, datetime]:
    start = datetime(period.year, period.month, 1, tzinfo=UTC)
    return start, next_month_start(start)


def identifier(
    organization_id: uuid.UUID, meter: MeterKey, start: datetime, carried_from: date | None = None
) -> str:
    """The meter event's identifier, the same on every retry: 'saassy-' and 40 hex digits.

    A digest rather than the parts themselves, so it is short, of Stripe's allowed characters,
    and names no organization to Stripe's logs. A carry-over of the previous month's late usage
    shares its window with the window's own report, so its month is part of what is digested."""
    key = f"{organization_id}:{meter.value}:{start.astimezone(UTC).isoformat()}"
    if carried_from is not None:
        key += f":carried-from:{carried_from.isoformat()}"
    return "saassy-" + hashlib.sha256(key.encode()).hexdigest()[:40]
