"""The usage ledger's metrics: their names, how a report combines them, how figures round.

Compute units follow Apify's definition: 1 CU is 1 GB of memory reserved for one hour, where
the reservation is the task type's `resources.memory_mb` for the attempt's wall time, so an
operator can price by resources instead of by task.
"""

from __future__ import annotations

from enum import StrEnum

CPU_SECONDS = "cpu_seconds"
WALL_SECONDS = "wall_seconds"
PEAK_MEMORY_MB = "peak_memory_mb"
MEMORY_GB_SECONDS = "memory_gb_seconds"
COMPUTE_UNITS = "compute_units"  # derived in reports, never recorded
EGRESS_BYTES = "egress_bytes"  # through the egress proxy, both ways
EGRESS_CONNECTIONS = "egress_connections"
EGRESS_REFUSED = "egress_refused"
MB_PER_GB = 1024
GB_SECONDS_PER_COMPUTE_UNIT = 3600.0


class Aggregate(StrEnum):
    """How a report combines a metric over attempts: peaks do not add up."""

    sum = "sum"
    max = "max"


def aggregate_of(metric: str) -> Aggregate:
    return Aggregate.max if metric == PEAK_MEMORY_MB else Aggregate.sum


def reserved_memory_gb_seconds(memory_mb: int, wall_seconds: float) -> float:
    """The memory an attempt held for its whole run, in GB-seconds."""
    return round(memory_mb / MB_PER_GB * wall_seconds, 6)


def compute_units(memory_gb_seconds: float) -> float:
    return memory_gb_seconds / GB_SECONDS_PER_COMPUTE_UNIT


def rounded(metric: str, quantity: float) -> float:
    """A figure as a report shows it: milliseconds, a tenth of a MB, whole counts."""
    if metric.endswith("_seconds"):
        return round(quantity, 3)
    if metric == PEAK_MEMORY_MB:
        return round(quantity, 1)
    if metric.startswith(("action:", "egress_")):
        return float(round(quantity))
    # Compute units are small (128 MB for a second is 0.000035 CU); custom units are the
    # program's own numbers, only float noise is taken off.
    return round(quantity, 6)
