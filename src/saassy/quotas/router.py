"""`/api/v1/usage`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from saassy.auth.dependencies import CurrentOrganization, CurrentPrincipal
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import Session, SettingsDep
from saassy.kit.errors import NotFound, ValidationFailed
from saassy.kit.time import bound_as_utc
from saassy.metering.repository import UsageLedgerRepository
from saassy.metering.service import metered_figures
from saassy.organizations.repository import OrganizationRepository
from saassy.quotas.schemas import MeteredRead, MeteredWindow, StorageRead, UsageRead
from saassy.quotas.service import usage_summary
from saassy.quotas.storage import storage_usage

MAX_WINDOW = timedelta(days=366)

router = APIRouter(prefix="/usage", tags=["usage"], dependencies=[READ_OR_ADMIN])


@router.get("")
async def read_usage(
    session: Session,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    active: CurrentOrganization,
    start: Annotated[
        datetime | None, Query(description="Metered window start (default: this period's).")
    ] = None,
    end: Annotated[datetime | None, Query(description="Metered window end (default: now).")] = None,
) -> UsageRead:
    """Quotas used and left this period, and metered usage by task type and metric."""
    organization = await OrganizationRepository(session).get_in_scope(active.id, principal.scope)
    if organization is None:
        raise NotFound("Organization")
    summary = await usage_summary(session, settings.catalog, organization)
    window_start = bound_as_utc(start) if start else summary.period_start
    window_end = bound_as_utc(end) if end else summary.period_end
    if window_end <= window_start:
        raise ValidationFailed("end must be after start.", field="end")
    if window_end - window_start > MAX_WINDOW:
        # Storage usage is summed day by day: a window of centuries is not a question to answer.
        raise ValidationFailed(
            f"A usage window spans at most {MAX_WINDOW.days} days.", field="start"
        )
    totals = await UsageLedgerRepository(session).totals(organization.id, window_start, window_end)
    usage = UsageRead.of(summary)
    usage.storage = StorageRead.of(
        await storage_usage(
            session, summary.plan, organization.id, window_start.date(), window_end.date()
        )
    )
    usage.metered = MeteredWindow(
        start=window_start,
        end=window_end,
        items=[MeteredRead(**vars(figure)) for figure in metered_figures(totals)],
    )
    return usage
