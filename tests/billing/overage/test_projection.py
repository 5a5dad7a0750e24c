"""The month's overage, exact in Decimal and rounded to cents only at the end."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from saassy.billing.projection import (
    OveragePrices,
    flat_for_month,
    overage_tasks_within,
    project_overage,
    prorated_from,
    share_of_cap,
)

PRICES = OveragePrices(per_task=Decimal("0.10"), per_compute_unit=Decimal("0.333"))


def test_tasks_past_the_plan_and_every_compute_unit_are_charged() -> None:
    projection = project_overage(
        tasks_counted=1_250, included_tasks=1_000, compute_units=Decimal("3"), prices=PRICES
    )
    assert projection.tasks_over == 250
    assert projection.tasks_usd == Decimal("25.00")
    assert projection.compute_units_usd == Decimal("0.999")
    assert projection.total_usd == Decimal("26.00")  # 25.999, rounded once


def test_rounding_happens_once_at_the_end() -> None:
    # Three CU-thirds of a cent each would round to 0 one by one; together they are a cent.
    prices = OveragePrices(per_task=None, per_compute_unit=Decimal("0.01"))
    projection = project_overage(
        tasks_counted=0, included_tasks=None, compute_units=Decimal("1.5"), prices=prices
    )
    assert projection.exact_usd == Decimal("0.015")
    assert projection.total_usd == Decimal("0.02")


def test_within_the_plan_or_without_prices_nothing_is_owed() -> None:
    within = project_overage(
        tasks_counted=900, included_tasks=1_000, compute_units=Decimal(0), prices=PRICES
    )
    unpriced = project_overage(
        tasks_counted=5_000,
        included_tasks=1_000,
        compute_units=Decimal(7),
        prices=OveragePrices(None, None),
    )
    unlimited = project_overage(
        tasks_counted=5_000, included_tasks=None, compute_units=Decimal(0), prices=PRICES
    )
    assert within.total_usd == unpriced.total_usd == unlimited.total_usd == Decimal("0.00")


@pytest.mark.parametrize(
    ("cap", "compute_units_usd", "price", "allowed"),
    [
        pytest.param("25.00", "0", "0.10", 250, id="cap-over-price"),
        pytest.param("25.05", "0.06", "0.10", 249, id="compute-units-first"),
        pytest.param("1.00", "1.00", "0.10", 0, id="compute-units-reached-the-cap"),
        pytest.param("1.00", "1.50", "0.10", 0, id="compute-units-past-the-cap"),
        pytest.param("0", "0", "0.10", 0, id="cap-of-zero"),
        pytest.param("0", "0", "0", 0, id="cap-of-zero-free-tasks"),
        pytest.param("5.00", "1.00", "0", None, id="free-tasks-below-the-cap"),
        pytest.param("0.99", "0", "0.10", 9, id="floor"),
    ],
)
def test_overage_tasks_a_cap_leaves_room_for(
    cap: str, compute_units_usd: str, price: str, allowed: int | None
) -> None:
    room = overage_tasks_within(Decimal(cap), Decimal(compute_units_usd), Decimal(price))
    assert room == allowed


def test_share_of_the_cap() -> None:
    assert share_of_cap(Decimal("20.00"), Decimal("25.00")) == Decimal("0.8")
    assert share_of_cap(Decimal("30"), Decimal("25")) == Decimal("1.2")
    assert share_of_cap(Decimal("0"), Decimal("0")) is None


DECEMBER = datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)


def test_the_first_month_costs_its_rest_to_the_second_and_later_months_all_of_it() -> None:
    # Subscribed Dec 14 12:00: 17.5 of December's 31 days are left.
    since = prorated_from(*DECEMBER, datetime(2026, 12, 14, 12, tzinfo=UTC))
    assert since == datetime(2026, 12, 14, 12, tzinfo=UTC)
    assert flat_for_month(Decimal(49), *DECEMBER, since) == Decimal("27.66")  # 27.6612...
    # One second before the month ends: a second of it is far below a cent.
    last = prorated_from(*DECEMBER, datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert flat_for_month(Decimal(49), *DECEMBER, last) == Decimal("0.00")
    # Renewed on the 1st, or subscribed in an earlier month: the whole price.
    assert prorated_from(*DECEMBER, DECEMBER[0]) is None
    assert prorated_from(*DECEMBER, datetime(2026, 11, 14, tzinfo=UTC)) is None
    assert prorated_from(*DECEMBER, None) is None
    assert flat_for_month(Decimal(49), *DECEMBER, None) == Decimal("49.00")
