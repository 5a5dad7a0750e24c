"""The staff's billing reconciliation page: what `saassy billing reconcile` shows, for a month."""

from __future__ import annotations

import stripe
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.billing.reconciliation import parse_period, reconcile
from saassy.billing.stripe_connection import open_stripe_client
from saassy.deps import Session, SettingsDep
from saassy.kit.errors import ValidationFailed
from saassy.kit.time import month_start, utcnow
from saassy.web.caller import StaffCaller
from saassy.web.templating import render

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/staff")


@router.get("/billing", response_class=HTMLResponse)
async def billing_reconciliation(
    request: Request, staff: StaffCaller, session: Session, settings: SettingsDep,
    period: str | None = None,
) -> Response:  # fmt: skip
    """Per organization and meter: ledger, reported, pending, not billable, Stripe."""
    error = None
    try:
        month = parse_period(period) if period else month_start(utcnow())
    except ValidationFailed as exc:
        error, month = exc.message, month_start(utcnow())
    stripe_down = False
    async with open_stripe_client(settings) as client:
        try:
            result = await reconcile(
                session, settings.catalog, client, month, settings.billing_window_s, utcnow()
            )
        except stripe.StripeError as exc:
            # Our own figures still show; Stripe's column says it could not be read.
            log.warning("billing.reconciliation_failed", error=type(exc).__name__, code=exc.code)
            stripe_down = True
            result = await reconcile(
                session, settings.catalog, None, month, settings.billing_window_s, utcnow()
            )
    return render(
        request,
        "app/staff/billing.html",
        {"result": result, "period": period or f"{month:%Y-%m}", "error": error,
         "billing_on": client is not None, "stripe_down": stripe_down},
    )  # fmt: skip
