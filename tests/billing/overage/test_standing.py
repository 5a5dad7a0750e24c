"""Which subscriptions may run up overage: paid up, or past due within the grace period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from saassy.billing.standing import paying
from saassy.models import BillingSubscription

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
GRACE = timedelta(days=7)


def subscription(status: str, past_due_since: datetime | None = None) -> BillingSubscription:
    return BillingSubscription(status=status, past_due_since=past_due_since)


@pytest.mark.parametrize(
    ("status", "since", "expected"),
    [
        ("active", None, True),
        ("trialing", None, True),
        ("past_due", NOW - timedelta(days=6, hours=23), True),
        ("past_due", None, True),  # the grace period runs from when it is known
        ("past_due", NOW - GRACE, False),
        ("past_due", NOW - timedelta(days=30), False),
        ("unpaid", None, False),
        ("canceled", None, False),
        ("incomplete", None, False),
        ("incomplete_expired", None, False),
        ("paused", None, False),
    ],
)
def test_paying(status: str, since: datetime | None, expected: bool) -> None:
    assert paying(subscription(status, since), NOW, GRACE) is expected


def test_no_subscription_is_not_paying() -> None:
    assert paying(None, NOW, GRACE) is False


def test_a_naive_time_from_sqlite_is_utc() -> None:
    since = (NOW - timedelta(days=8)).replace(tzinfo=None)
    assert paying(subscription("past_due", since), NOW, GRACE) is False
