"""Usage as a report shows it: peaks as maxima, compute units derived, figures rounded."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from saassy.metering.metrics import (
    COMPUTE_UNITS,
    MEMORY_GB_SECONDS,
    Aggregate,
    aggregate_of,
    compute_units,
    rounded,
)
from saassy.metering.repository import MeteredTotal


@dataclass(frozen=True)
class MeteredFigure:
    task_type: str
    metric: str
    quantity: float
    aggregate: Aggregate
    tasks: int


def metered_figures(totals: Iterable[MeteredTotal]) -> list[MeteredFigure]:
    """One figure per task type and metric, plus compute units beside memory GB-seconds."""
    figures = []
    for total in totals:
        aggregate = aggregate_of(total.metric)
        quantity = total.largest if aggregate is Aggregate.max else total.total
        figures.append(
            MeteredFigure(
                total.task_type,
                total.metric,
                rounded(total.metric, quantity),
                aggregate,
                total.tasks,
            )
        )
        if total.metric == MEMORY_GB_SECONDS:
            units = rounded(COMPUTE_UNITS, compute_units(total.total))
            figures.append(
                MeteredFigure(total.task_type, COMPUTE_UNITS, units, Aggregate.sum, total.tasks)
            )
    return figures
