"""`/api/v1/admin/billing/reconciliation`: staff compare the ledger, our reports and Stripe."""

from __future__ import annotations

from typing import Annotated

import stripe
import structlog
from fastapi import APIRouter, Query

from saassy.auth.dependencies import StaffUser
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.billing.errors import StripeUnavailable
from saassy.billing.reconciliation import parse_period, reconcile
from saassy.billing.reconciliation_schemas import ReconciliationRead
from saassy.billing.stripe_connection import open_stripe_client
from saassy.deps import Session, SettingsDep
from saassy.kit.time import month_start, utcnow

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/admin/billing", tags=["admin"], dependencies=[READ_OR_ADMIN])


@router.get("/reconciliation")
async def read_reconciliation(
    session: Session,
    settings: SettingsDep,
    staff: StaffUser,
    period: Annotated[str | None, Query(max_length=7, description="YYYY-MM; this month")] = None,
) -> ReconciliationRead:
    """Per organization and meter: ledger, reported, pending, not billable, Stripe, and the
    differences (0 expected for closed windows)."""
    month = parse_period(period) if period else month_start(utcnow())
    async with open_stripe_client(settings) as client:
        try:
            result = await reconcile(
                session, settings.catalog, client, month, settings.billing_window_s, utcnow()
            )
        except stripe.StripeError as exc:
            log.warning("billing.reconciliation_failed", error=type(exc).__name__, code=exc.code)
            raise StripeUnavailable() from exc
    return ReconciliationRead.of(result)
