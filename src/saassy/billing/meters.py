"""The Billing Meters usage above a plan is reported to: their event names and units.

Overage is billed per task past the plan's `tasks_per_month`, and per compute unit (1 CU =
1 GB of reserved memory for an hour, `metering.metrics`). One meter each, shared by every
plan: the plan's metered Price attached to the meter carries the amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from stripe.params.billing import MeterCreateParams


class MeterKey(StrEnum):
    tasks = "tasks"
    compute_units = "compute_units"


@dataclass(frozen=True)
class MeterDefinition:
    key: MeterKey
    event_name: str  # what meter events name; unique within the Stripe account
    display_name: str
    unit: str  # how an invoice line counts it


METERS: dict[MeterKey, MeterDefinition] = {
    MeterKey.tasks: MeterDefinition(MeterKey.tasks, "saassy_tasks", "Tasks over the plan", "task"),
    MeterKey.compute_units: MeterDefinition(
        MeterKey.compute_units, "saassy_compute_units", "Compute units", "compute unit"
    ),
}
# The event's payload keys, as each meter's customer mapping and value settings name them.
CUSTOMER_KEY = "stripe_customer_id"
VALUE_KEY = "value"
# What one unit of a meter event's value is, per catalog unit. Stripe's guide has meter event
# values be whole numbers, so compute units go in thousandths (1 mCU = 3.6 GB-seconds): the
# compute-unit Price is per thousandth (`unit_amount_decimal` = cents per CU / 1000).
EVENT_UNITS_PER_UNIT: dict[MeterKey, int] = {MeterKey.tasks: 1, MeterKey.compute_units: 1000}


def meter_create_params(meter: MeterDefinition) -> MeterCreateParams:
    """The Billing Meter as Stripe is asked to make it: a sum of the events' values, the
    customer named by id in each event."""
    return {
        "display_name": meter.display_name,
        "event_name": meter.event_name,
        "default_aggregation": {"formula": "sum"},
        "customer_mapping": {"event_payload_key": CUSTOMER_KEY, "type": "by_id"},
        "value_settings": {"event_payload_key": VALUE_KEY},
    }
