"""When a schedule is due: a five-field cron expression read in a time zone (croniter), or a
fixed interval counted from an anchor. Pure: no database, no clock of its own."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterError, croniter

from saassy.kit.time import as_utc
from saassy.schedules.errors import (
    CadenceRequired,
    IntervalOutOfRange,
    InvalidCron,
    UnknownTimeZone,
)

# A cron expression fires at most once a minute; an interval may not be shorter either.
MIN_INTERVAL_S = 60
MAX_INTERVAL_S = 366 * 24 * 3600
CRON_FIELDS = 5
# Counting the due times an outage missed stops here (an every-minute schedule down for a year
# would otherwise walk half a million of them); the history then says "at least".
MAX_COUNTED = 1000

# Standard cron as crontab(5) reads it: in each field `*`, numbers, ranges and lists, a step
# after `*` or a range, and names in the month and weekday fields. croniter reads more (R for
# random, H for hashed, L, W, # and ?), which other cron implementations do not: refused, so
# an expression means the same wherever it is read.
_NUMBER = r"\d{1,2}"
_NAMED = r"(?:\d{1,2}|[a-z]{3})"
MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")


def _field_pattern(value: str) -> re.Pattern[str]:
    element = rf"(?:\*(?:/\d{{1,2}})?|{value}-{value}(?:/\d{{1,2}})?|{value})"
    return re.compile(rf"{element}(?:,{element})*", re.ASCII | re.IGNORECASE)


_FIELD_PATTERNS = (
    _field_pattern(_NUMBER),
    _field_pattern(_NUMBER),
    _field_pattern(_NUMBER),
    _field_pattern(_NAMED),
    _field_pattern(_NAMED),
)
# The longest IANA name is about 30 characters; the column holds 64.
MAX_ZONE_NAME = 64


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_of(name: str) -> ZoneInfo:
    """An IANA time zone by name (e.g. Europe/Paris), or UnknownTimeZone (422).

    Only names the time zone database lists: a path inside it that is no zone (`America`, a
    directory; `zone.tab`) or outside it (`../x`) is refused before any file is opened."""
    if len(name) > MAX_ZONE_NAME or name not in _zone_names():
        raise UnknownTimeZone(name[:MAX_ZONE_NAME])
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UnknownTimeZone(name) from None


def check_cron(expression: str) -> str:
    """A standard five-field expression (or a macro such as @daily), or InvalidCron (422)."""
    expression = " ".join(expression.split())
    if expression.startswith("@"):
        if expression.lower() not in MACROS:
            raise InvalidCron(expression, f"the macros are {', '.join(sorted(MACROS))}")
        expression = expression.lower()
    else:
        fields = expression.split(" ")
        # A sixth field is croniter's seconds: a schedule firing every second is not one we run.
        if len(fields) != CRON_FIELDS:
            raise InvalidCron(
                expression, f"it needs {CRON_FIELDS} fields (minute hour day month weekday)"
            )
        for field, pattern, name in zip(fields, _FIELD_PATTERNS, FIELD_NAMES, strict=True):
            if pattern.fullmatch(field) is None:
                raise InvalidCron(
                    expression,
                    f"its {name} field {field!r} is not standard cron (numbers, names of months "
                    "and days, *, ranges, lists and steps only)",
                )
    if not croniter.is_valid(expression):
        raise InvalidCron(expression, "croniter cannot read it")
    try:
        croniter(expression, datetime.now(UTC)).get_next(datetime)
    except CroniterError:  # valid fields that name no date, such as 30 February
        raise InvalidCron(expression, "it names no date that exists") from None
    return expression


def check_interval(seconds: int) -> int:
    if not MIN_INTERVAL_S <= seconds <= MAX_INTERVAL_S:
        raise IntervalOutOfRange(seconds, MIN_INTERVAL_S, MAX_INTERVAL_S)
    return seconds


@dataclass(frozen=True)
class Cadence:
    """A schedule's due times: `cron` in `timezone`, or every `interval_s` from `anchor`."""

    cron: str | None
    interval_s: int | None
    timezone: str
    anchor: datetime

    @classmethod
    def checked(
        cls, cron: str | None, interval_s: int | None, timezone: str, anchor: datetime
    ) -> Cadence:
        """A cadence from client input: exactly one of cron and interval, each valid."""
        if (cron is None) == (interval_s is None):
            raise CadenceRequired()
        zone_of(timezone)
        return cls(
            cron=check_cron(cron) if cron is not None else None,
            interval_s=check_interval(interval_s) if interval_s is not None else None,
            timezone=timezone,
            anchor=as_utc(anchor),
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after `moment`, in UTC."""
        moment = as_utc(moment)
        if self.interval_s is not None:
            elapsed = (moment - self.anchor).total_seconds()
            steps = max(0, math.floor(elapsed / self.interval_s) + 1)
            due = self.anchor + timedelta(seconds=steps * self.interval_s)
            # Float rounding near a boundary: step on until strictly after.
            while due <= moment:
                due += timedelta(seconds=self.interval_s)
            return due
        assert self.cron is not None
        local = moment.astimezone(zone_of(self.timezone))
        following: datetime = croniter(self.cron, local).get_next(datetime)
        return following.astimezone(UTC)

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last due time at or before `moment` (None: none yet, for an interval)."""
        moment = as_utc(moment)
        if self.interval_s is not None:
            if moment < self.anchor:
                return None
            steps = math.floor((moment - self.anchor).total_seconds() / self.interval_s)
            return self.anchor + timedelta(seconds=steps * self.interval_s)
        assert self.cron is not None
        local = moment.astimezone(zone_of(self.timezone))
        before: datetime = croniter(self.cron, local).get_prev(datetime)
        before = before.astimezone(UTC)
        # get_prev is strictly before: `moment` itself may be a due time.
        following = self.next_after(before)
        return following if following <= moment else before

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """The next `count` due times after `after`."""
        times: list[datetime] = []
        moment = after
        for _ in range(count):
            moment = self.next_after(moment)
            times.append(moment)
        return times

    def count_between(self, first: datetime, last: datetime) -> int:
        """How many due times lie in [first, last], `first` being one (at most MAX_COUNTED)."""
        first, last = as_utc(first), as_utc(last)
        if last < first:
            return 0
        if self.interval_s is not None:
            return min(MAX_COUNTED, int((last - first).total_seconds() // self.interval_s) + 1)
        count, moment = 1, first
        while count < MAX_COUNTED:
            moment = self.next_after(moment)
            if moment > last:
                break
            count += 1
        return count
