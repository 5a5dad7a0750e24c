"""Overage as the ledger shows it: how much of a month a meter bills, in event units.

One rule per meter, over the month's cumulative usage: tasks past the plan's
`tasks_per_month` (the monthly quota's settled reservations), and every compute unit when the
plan prices them (the attempts' `memory_gb_seconds`, in thousandths of a CU, rounded down so
nothing is billed before it is whole). Cumulative figures are exact integers on every
database: GB-seconds are summed as whole micro-GB-seconds, never as floats.
"""

from __future__ import annotations

from dataclasses import dataclass

from saassy.billing.meters import EVENT_UNITS_PER_UNIT, MeterKey
from saassy.metering.metrics import GB_SECONDS_PER_COMPUTE_UNIT
from saassy.plans.catalog import Plan

MICRO = 1_000_000
# micro-GB-seconds in one event unit of compute (a thousandth of a CU: 3.6 GB-seconds)
MICRO_GB_SECONDS_PER_EVENT_UNIT = round(
    GB_SECONDS_PER_COMPUTE_UNIT * MICRO / EVENT_UNITS_PER_UNIT[MeterKey.compute_units]
)


@dataclass(frozen=True)
class OverageRule:
    """How a plan turns a month's cumulative usage of one meter into billable event units."""

    meter: MeterKey
    included: int  # units the plan's price covers (tasks_per_month; 0 for compute)

    def billable(self, cumulative: int) -> int:
        if self.meter is MeterKey.compute_units:
            return cumulative // MICRO_GB_SECONDS_PER_EVENT_UNIT
        return max(0, cumulative - self.included)


def overage_rules(plan: Plan) -> list[OverageRule]:
    """The meters the plan prices overage on; none without a price (or without a limit)."""
    rules = []
    if plan.overage_usd_per_task is not None and plan.tasks_per_month is not None:
        rules.append(OverageRule(MeterKey.tasks, plan.tasks_per_month))
    if plan.overage_usd_per_compute_unit is not None:
        rules.append(OverageRule(MeterKey.compute_units, 0))
    return rules


def micro(quantity: float) -> int:
    """A ledger quantity (rounded to 6 decimals when recorded) as a whole number of millionths."""
    return round(quantity * MICRO)
