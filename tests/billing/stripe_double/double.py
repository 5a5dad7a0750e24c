"""The pieces every route reaches through `double(request)`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from tests.billing.stripe_double.faults import Faults
from tests.billing.stripe_double.localstripe import Localstripe
from tests.billing.stripe_double.state import State
from tests.billing.stripe_double.webhooks import Deliveries


@dataclass
class Double:
    state: State
    localstripe: Localstripe
    deliveries: Deliveries
    faults: Faults


def double(request: Request) -> Double:
    found: Double = request.app.state.double
    return found
