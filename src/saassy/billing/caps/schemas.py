"""Bodies of `/api/v1/billing/spend-cap`: money as decimal strings, exact to the cent."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field

# Stored in cents in a 32-bit column: ten million dollars a month is far past any real cap.
MAX_CAP_USD = Decimal("10000000")


class SpendCapPut(BaseModel):
    monthly_cap_usd: Annotated[
        Decimal,
        Field(
            ge=0,
            le=MAX_CAP_USD,
            decimal_places=2,
            allow_inf_nan=False,
            description="The most overage to be charged in a month, in USD; 0: no overage.",
            examples=["25.00"],
        ),
    ]


class SpendCapOut(BaseModel):
    monthly_cap_usd: Decimal | None = Field(description="None: no cap.")
    period_start: datetime
    period_end: datetime
    overage_usd: Decimal = Field(
        description="This month's projected overage: tasks past the plan so far (queued and "
        "running ones included) and compute units recorded so far, at the plan's prices."
    )
    tasks_over_plan: int
    compute_units: Decimal
    share_used: float | None = Field(
        description="overage_usd / monthly_cap_usd (1.0: the cap is reached); None without "
        "a cap or with a cap of 0."
    )
    warned: bool = Field(description="This month's 80% e-mail has gone out.")
