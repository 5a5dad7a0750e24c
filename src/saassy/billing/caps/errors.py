"""The spend cap's refusal: a 402 like an exhausted quota, saying what to raise."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from saassy.kit.errors import QuotaExceeded, SaassyError

WHERE_TO_RAISE = "PUT /api/v1/billing/spend-cap (an owner or admin; DELETE removes the cap)"


class SpendCapReached(QuotaExceeded):
    """A task past the plan whose overage would pass the organization's monthly spend cap.

    A QuotaExceeded, so whoever handles an exhausted quota (a replayed submission, the
    dashboard's forms) handles this one too."""

    code = "spend_cap_reached"

    def __init__(self, cap_usd: Decimal, overage_usd: Decimal, resets_at: datetime) -> None:
        if cap_usd == 0:
            why = "a cap of $0.00 allows no overage"
        else:
            why = (
                f"this month's overage so far is ${overage_usd} and another task would take it "
                "past the cap"
            )
        SaassyError.__init__(
            self,
            f"The monthly spend cap of ${cap_usd} on overage is reached: {why}. The plan's "
            f"tasks this month are used up. Raise the cap with {WHERE_TO_RAISE}, or wait until "
            f"{resets_at.isoformat()}.",
            details={
                "metric": "tasks",
                "monthly_cap_usd": str(cap_usd),
                "overage_usd": str(overage_usd),
                "resets_at": resets_at.isoformat(),
            },
        )
