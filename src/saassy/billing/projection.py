"""What a month comes to: the plan's flat price (prorated in the month a subscription began)
and the overage, tasks past the plan and compute units, at the plan's prices.

Pure and exact: Decimal throughout, rounded to cents only where a figure is shown. Admission
uses it for spend caps; the billing page shows the same figure as the projected cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from saassy.plans.catalog import Plan

CENT = Decimal("0.01")
SECOND = timedelta(seconds=1)


def to_cents(usd: Decimal) -> Decimal:
    return usd.quantize(CENT, rounding=ROUND_HALF_UP)


def prorated_from(
    month_start: datetime, month_end: datetime, subscribed_at: datetime | None
) -> datetime | None:
    """When the month's flat price starts counting: `subscribed_at` (a subscription's first
    period's start) when it lies within the month, else None (the whole month counts)."""
    if subscribed_at is not None and month_start < subscribed_at < month_end:
        return subscribed_at
    return None


def flat_for_month(
    price_usd: Decimal, month_start: datetime, month_end: datetime, since: datetime | None
) -> Decimal:
    """The month's flat price in cents: all of it, or from `since` to the month's end, as Stripe
    prorates a first invoice up to the billing cycle anchor: to the second, as a share of the
    whole period that ends at the anchor (here the calendar month)."""
    if since is None:
        return to_cents(price_usd)
    share = Decimal((month_end - since) // SECOND) / ((month_end - month_start) // SECOND)
    return to_cents(price_usd * share)


@dataclass(frozen=True)
class OveragePrices:
    """A plan's overage prices in USD; None: not sold (a task past the plan is refused)."""

    per_task: Decimal | None
    per_compute_unit: Decimal | None

    @classmethod
    def of(cls, plan: Plan) -> OveragePrices:
        return cls(plan.overage_usd_per_task, plan.overage_usd_per_compute_unit)


@dataclass(frozen=True)
class Projection:
    """The month's overage so far; its USD figures are exact until `total_usd` rounds them."""

    tasks_over: int
    tasks_usd: Decimal
    compute_units: Decimal
    compute_units_usd: Decimal

    @property
    def exact_usd(self) -> Decimal:
        return self.tasks_usd + self.compute_units_usd

    @property
    def total_usd(self) -> Decimal:
        return to_cents(self.exact_usd)


def project_overage(
    *,
    tasks_counted: int,
    included_tasks: int | None,
    compute_units: Decimal,
    prices: OveragePrices,
) -> Projection:
    """The overage of a month with `tasks_counted` tasks and `compute_units` CU so far.

    Tasks past `included_tasks` (None: unlimited) cost the per-task price; every compute unit
    costs the per-CU price (plans include none). An unpriced meter costs nothing."""
    tasks_over = 0 if included_tasks is None else max(0, tasks_counted - included_tasks)
    tasks_usd = tasks_over * prices.per_task if prices.per_task is not None else Decimal(0)
    cu_price = prices.per_compute_unit
    compute_units_usd = compute_units * cu_price if cu_price is not None else Decimal(0)
    return Projection(tasks_over, tasks_usd, compute_units, compute_units_usd)


def overage_tasks_within(
    cap_usd: Decimal, compute_units_usd: Decimal, price_per_task: Decimal
) -> int | None:
    """How many tasks past the plan a cap leaves room for, after what compute units cost so
    far; None: as many as asked (free overage tasks, while the cap is not reached). A cap of 0
    allows no overage at all."""
    room = cap_usd - compute_units_usd
    if cap_usd <= 0 or room <= 0:
        return 0
    if price_per_task == 0:
        return None
    return int((room / price_per_task).to_integral_value(rounding=ROUND_FLOOR))


def share_of_cap(overage_usd: Decimal, cap_usd: Decimal) -> Decimal | None:
    """How much of the cap the overage uses (1 = all of it); None for a cap of 0."""
    if cap_usd <= 0:
        return None
    return (overage_usd / cap_usd).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
