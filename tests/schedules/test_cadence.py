"""Due times: cron in a time zone (across a DST change), intervals from their anchor, and
counting what an outage missed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from saassy.kit.errors import ValidationFailed
from saassy.models import CatchUp
from saassy.schedules.cadence import MAX_COUNTED, Cadence
from saassy.schedules.runs import plan_firing

ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)


def cron(expression: str, timezone: str = "UTC") -> Cadence:
    return Cadence.checked(expression, None, timezone, ANCHOR)


def test_cron_follows_its_time_zone_across_daylight_saving() -> None:
    paris = cron("30 9 * * *", "Europe/Paris")
    # Paris moves from UTC+1 to UTC+2 on 29 March 2026: 09:30 local is 08:30Z, then 07:30Z.
    runs = paris.upcoming(datetime(2026, 3, 27, 12, tzinfo=UTC), 3)
    assert runs == [
        datetime(2026, 3, 28, 8, 30, tzinfo=UTC),
        datetime(2026, 3, 29, 7, 30, tzinfo=UTC),
        datetime(2026, 3, 30, 7, 30, tzinfo=UTC),
    ]


def test_next_is_strictly_after_and_latest_includes_the_moment_itself() -> None:
    minutely = cron("* * * * *")
    on_the_minute = datetime(2026, 3, 2, 10, 3, tzinfo=UTC)
    assert minutely.next_after(on_the_minute) == on_the_minute + timedelta(minutes=1)
    assert minutely.latest_at_or_before(on_the_minute) == on_the_minute
    just_before = on_the_minute - timedelta(microseconds=1)
    assert minutely.latest_at_or_before(just_before) == on_the_minute - timedelta(minutes=1)


def test_an_interval_counts_from_its_anchor() -> None:
    every_90s = Cadence.checked(None, 90, "UTC", ANCHOR)
    assert every_90s.next_after(ANCHOR) == ANCHOR + timedelta(seconds=90)
    assert every_90s.next_after(ANCHOR + timedelta(seconds=100)) == ANCHOR + timedelta(seconds=180)
    assert every_90s.latest_at_or_before(ANCHOR - timedelta(seconds=1)) is None
    assert every_90s.latest_at_or_before(ANCHOR + timedelta(seconds=180)) == ANCHOR + timedelta(
        seconds=180
    )


def test_counting_missed_due_times_is_bounded() -> None:
    minutely = cron("* * * * *")
    start = datetime(2026, 3, 2, tzinfo=UTC)
    assert minutely.count_between(start, start + timedelta(minutes=2)) == 3
    assert minutely.count_between(start, start + timedelta(days=365)) == MAX_COUNTED
    hourly = Cadence.checked(None, 3600, "UTC", start)
    assert hourly.count_between(start, start + timedelta(days=365)) == MAX_COUNTED


@pytest.mark.parametrize(
    ("catch_up", "late_by_s", "skipped"),
    [(CatchUp.once, 45, False), (CatchUp.skip, 45, True), (CatchUp.skip, 5, False)],
)
def test_missed_due_times_collapse_into_one(
    catch_up: CatchUp, late_by_s: int, skipped: bool
) -> None:
    minutely = cron("* * * * *")
    first = datetime(2026, 3, 2, 10, 1, tzinfo=UTC)
    now = first + timedelta(minutes=2, seconds=late_by_s)
    firing = plan_firing(minutely, first, catch_up, now)
    assert firing.due_at == first + timedelta(minutes=2)
    assert firing.missed == 2
    assert firing.skipped is skipped
    assert firing.next_run_at == first + timedelta(minutes=3)


@pytest.mark.parametrize(
    ("cron_expression", "interval_s", "timezone", "code"),
    [
        ("0 9 * *", None, "UTC", "invalid_cron"),
        ("@reboot", None, "UTC", "invalid_cron"),
        ("0 0 30 2 *", None, "UTC", "invalid_cron"),
        ("0 9 * * *", None, "Not/AZone", "unknown_time_zone"),
        ("0 9 * * *", None, "../../etc/passwd", "unknown_time_zone"),
        (None, 30, "UTC", "interval_out_of_range"),
        (None, 10**9, "UTC", "interval_out_of_range"),
        (None, None, "UTC", "cadence_required"),
    ],
)
def test_bad_cadences_are_refused(
    cron_expression: str | None, interval_s: int | None, timezone: str, code: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        Cadence.checked(cron_expression, interval_s, timezone, ANCHOR)
    assert refused.value.code == code
