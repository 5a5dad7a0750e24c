"""What staff read of a reconciliation (the API and `saassy billing reconcile --json`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

from saassy.billing.reconciliation import MeterLine, Reconciliation


class MeterLineRead(BaseModel):
    organization_id: uuid.UUID
    organization: str
    meter: str
    unit: str  # what one of these figures is
    stripe_customer_id: str
    ledger: int
    reported: int
    pending: int
    not_billable: int
    carried_in: int  # the previous month's late usage, billed on this month's invoice
    carried_out: int  # this month's late usage, billed on the next month's invoice
    stripe: int | None  # Stripe's figure for this month's usage (carried in/out accounted)
    ledger_minus_reported: int
    ledger_minus_stripe: int | None
    reported_minus_stripe: int | None
    settled: bool
    alarming: bool

    @classmethod
    def of(cls, line: MeterLine) -> MeterLineRead:
        return cls(
            organization_id=line.organization_id,
            organization=line.organization,
            meter=line.meter.value,
            unit="task" if line.meter.value == "tasks" else "thousandth of a compute unit",
            stripe_customer_id=line.stripe_customer_id,
            ledger=line.ledger,
            reported=line.reported,
            pending=line.pending,
            not_billable=line.not_billable,
            carried_in=line.carried_in,
            carried_out=line.carried_out,
            stripe=line.stripe,
            ledger_minus_reported=line.ledger_minus_reported,
            ledger_minus_stripe=line.ledger_minus_stripe,
            reported_minus_stripe=line.reported_minus_stripe,
            settled=line.settled,
            alarming=line.alarming,
        )


class ReconciliationRead(BaseModel):
    period: str  # YYYY-MM
    closed_until: datetime
    settled: bool  # every line 0, nothing in flight
    alarming: int  # lines whose difference waiting will not close
    lines: list[MeterLineRead]

    @classmethod
    def of(cls, result: Reconciliation) -> ReconciliationRead:
        return cls(
            period=f"{result.period:%Y-%m}",
            closed_until=result.closed_until,
            settled=result.settled,
            alarming=len(result.alarming),
            lines=[MeterLineRead.of(line) for line in result.lines],
        )
