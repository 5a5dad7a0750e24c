"""Bodies of `/api/v1/billing/spend-cap`: money as decimal strings, exact to the cent."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field
from pydantic_core import PydanticCustomError

# Stored in cents in a 32-bit column: ten million dollars a month is far past any real cap.
MAX_CAP_USD = Decimal("10000000")
# Python's Decimal also reads "1_000" and other scripts' digits ("١٢" is 12), which a person
# does not mean as an amount and no other client reads alike: an amount is ASCII digits.
_AMOUNT = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*", re.ASCII)


def _written_amount(value: object) -> object:
    if isinstance(value, str) and _AMOUNT.fullmatch(value) is None:
        raise PydanticCustomError(
            "decimal_parsing", "Input should be an amount in digits 0-9, e.g. 25.00"
        )
    return value


class SpendCapPut(BaseModel):
    monthly_cap_usd: Annotated[
        Decimal,
        BeforeValidator(_written_amount),
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
