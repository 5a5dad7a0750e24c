"""The Billing Meters usage above a plan is reported to: their event names and units.

Overage is billed per task past the plan's `tasks_per_month`, and per compute unit (1 CU =
1 GB of reserved memory for an hour, `metering.metrics`). One meter each, shared by every
plan: the plan's metered Price attached to the meter carries the amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
