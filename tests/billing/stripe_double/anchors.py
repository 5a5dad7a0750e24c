"""Stripe's `billing_cycle_anchor` on a new subscription: the rules the double and its
localstripe share (both processes import this module; it imports neither).

A subscription started at `start` with the anchor `A` (after `start`, no later than the
natural billing date `start` + one interval) has its first period from `start` to `A`; the
later ones run from `A` by whole intervals, each counted from `A` (an anchor on the 31st bills
on the 28th in February and the 31st in March). With `proration_behavior=create_prorations`
(Stripe's default) the first invoice charges the price times `(A - start)` over the length of
the whole interval that ends at `A`, to the second, rounded to the cent; with `none` the first
period costs nothing.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

PRORATION_BEHAVIORS = ("create_prorations", "none")


def shifted(moment: int, interval: str, count: int) -> int:
    """`moment` moved by `count` intervals (negative: back), in UTC, the day clamped to the
    month's last as Stripe does."""
    at = datetime.fromtimestamp(moment, UTC)
    if interval in ("day", "week"):
        at += timedelta(days=count * (7 if interval == "week" else 1))
    else:
        months = at.month - 1 + count * (12 if interval == "year" else 1)
        year, month = at.year + months // 12, months % 12 + 1
        at = at.replace(
            year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1])
        )
    return int(at.timestamp())


def refusal(anchor: int, now: int, interval: str, interval_count: int) -> str | None:
    """Why Stripe refuses the anchor for a subscription starting `now`; None: it does not."""
    if anchor <= now:
        return f"billing_cycle_anchor ({anchor}) must be in the future."
    natural = shifted(now, interval, interval_count)
    if anchor > natural:
        return (
            f"billing_cycle_anchor cannot be later than next natural billing date ({natural}) "
            "for plan"
        )
    return None


def current_period(
    start: int, anchor: int, interval: str, interval_count: int, now: int
) -> tuple[int, int]:
    """The period `now` falls in: the first, `start` to `anchor`, or a whole one after it."""
    if now < anchor:
        return start, anchor
    k = 0
    while shifted(anchor, interval, (k + 1) * interval_count) <= now:
        k += 1
    return shifted(anchor, interval, k * interval_count), shifted(
        anchor, interval, (k + 1) * interval_count
    )


def prorated(amount: int, start: int, anchor: int, interval: str, interval_count: int) -> int:
    """The first invoice's charge for a price of `amount` (cents): its share of the interval
    ending at the anchor, rounded half up to the cent."""
    whole = anchor - shifted(anchor, interval, -interval_count)
    return (2 * amount * (anchor - start) + whole) // (2 * whole)
