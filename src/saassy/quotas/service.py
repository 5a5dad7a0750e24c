"""The quota service the task engine calls: reserve before work, settle or release after.

Reservations are atomic with the caller's transaction: the counter is created or moved by one
conditional upsert (row lock on PostgreSQL, `BEGIN IMMEDIATE` on SQLite), so N concurrent
callers at the limit admit exactly the units left. A rolled-back transaction takes its
reservation with it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.kit.errors import NotFound, QuotaExceeded
from saassy.kit.time import utcnow
from saassy.models import Organization, QuotaReservation, ReservationStatus
from saassy.organizations.repository import OrganizationRepository
from saassy.plans.catalog import Catalog, Plan
from saassy.plans.service import effective_plan
from saassy.quotas.periods import TASKS, QuotaWindow, action_metric, quota_window
from saassy.quotas.repository import (
    ClosedReservation,
    QuotaCounterRepository,
    QuotaReservationRepository,
)


async def reserve(
    session: AsyncSession,
    catalog: Catalog,
    organization_id: uuid.UUID,
    metric: str,
    amount: int = 1,
    now: datetime | None = None,
) -> QuotaReservation:
    """Take `amount` of `metric` from the organization's current window, or QuotaExceeded."""
    organization = await OrganizationRepository(session).get(organization_id)
    if organization is None or organization.deleted_at is not None:
        raise NotFound("Organization")
    plan = effective_plan(catalog, organization)
    reserved = await reserve_in_plan(session, plan, organization_id, metric, amount, now)
    return await _reservation(QuotaReservationRepository(session), reserved.reservation_id)


async def reserve_in_plan(
    session: AsyncSession,
    plan: Plan,
    organization_id: uuid.UUID,
    metric: str,
    amount: int = 1,
    now: datetime | None = None,
) -> Reserved:
    """`reserve` for a caller that already holds the organization's effective plan; the
    reservation and the window's counter after it."""
    window = quota_window(plan, metric, now or utcnow())
    reserved = await reserve_up_to(session, organization_id, window, window.limit, amount)
    if reserved is None:
        assert window.limit is not None
        used = await QuotaCounterRepository(session).used(organization_id, metric, window.start)
        raise QuotaExceeded(metric, limit=window.limit, used=used, resets_at=window.resets_at)
    return reserved


@dataclass(frozen=True)
class Reserved:
    reservation_id: uuid.UUID
    used: int  # the window's counter, this reservation included


async def reserve_up_to(
    session: AsyncSession,
    organization_id: uuid.UUID,
    window: QuotaWindow,
    limit: int | None,
    amount: int = 1,
) -> Reserved | None:
    """Reserve in `window` as long as its counter stays within `limit` (which may differ
    from the plan's: billing lets a paying organization past it); None when it would not."""
    if amount < 1:
        raise ValueError("a reservation takes at least 1 unit")
    counters = QuotaCounterRepository(session)
    used = await counters.take_counted(organization_id, window.metric, window.start, amount, limit)
    if used is None:
        return None
    reservation_id = await QuotaReservationRepository(session).insert_reserved(
        organization_id, window.metric, window.start, amount
    )
    return Reserved(reservation_id, used)


async def settle(
    session: AsyncSession, reservation_id: uuid.UUID, actual: int | None = None
) -> bool:
    """Count what was used (default: all of it); less gives the rest back, more adds it.

    False if the reservation was already closed: a repeat changes nothing.
    """
    if actual is not None and actual < 0:
        raise ValueError("actual usage cannot be negative")
    closed = await _close(session, reservation_id, ReservationStatus.settled, actual)
    if closed is None:
        return False
    counters = QuotaCounterRepository(session)
    key = (closed.organization_id, closed.metric, closed.period_start)
    counted = closed.amount if actual is None else actual
    if counted < closed.amount:
        await counters.give_back(*key, closed.amount - counted)
    elif counted > closed.amount:
        # The work already happened: it is counted even past the limit.
        await counters.take(*key, counted - closed.amount, limit=None)
    return True


async def release(session: AsyncSession, reservation_id: uuid.UUID) -> bool:
    """Give the whole reservation back (the work did not happen); False if already closed."""
    closed = await _close(session, reservation_id, ReservationStatus.released, 0)
    if closed is None:
        return False
    await QuotaCounterRepository(session).give_back(
        closed.organization_id, closed.metric, closed.period_start, closed.amount
    )
    return True


async def _close(
    session: AsyncSession,
    reservation_id: uuid.UUID,
    status: ReservationStatus,
    settled_amount: int | None,
) -> ClosedReservation | None:
    """One UPDATE ... RETURNING; a lookup only when it matched nothing (NotFound or closed)."""
    reservations = QuotaReservationRepository(session)
    closed = await reservations.close(reservation_id, status, settled_amount, utcnow())
    if closed is None:
        await _reservation(reservations, reservation_id)
    return closed


async def _reservation(
    reservations: QuotaReservationRepository, reservation_id: uuid.UUID
) -> QuotaReservation:
    found = await reservations.get(reservation_id)
    if found is None:
        raise NotFound("Quota reservation")
    return found


@dataclass(frozen=True)
class QuotaUsage:
    window: QuotaWindow
    used: int

    @property
    def remaining(self) -> int | None:
        limit = self.window.limit
        return None if limit is None else max(0, limit - self.used)


@dataclass(frozen=True)
class UsageSummary:
    organization_id: uuid.UUID
    plan: Plan
    period_start: datetime
    period_end: datetime
    quotas: list[QuotaUsage]


async def usage_summary(
    session: AsyncSession, catalog: Catalog, organization: Organization, now: datetime | None = None
) -> UsageSummary:
    """What is used and what is left in the current windows, per metric of the plan."""
    now = now or utcnow()
    plan = effective_plan(catalog, organization)
    month = quota_window(plan, TASKS, now)
    metrics = [TASKS, *(action_metric(name) for name in sorted(plan.daily_action_caps))]
    used = dict(
        await QuotaCounterRepository(session).current(
            organization.id, month.start, now.astimezone(UTC).date()
        )
    )
    # Actions without a cap are still counted: show them once they were used today.
    metrics += sorted(metric for metric in used if metric not in metrics)
    return UsageSummary(
        organization_id=organization.id,
        plan=plan,
        period_start=month.starts_at,
        period_end=month.resets_at,
        quotas=[QuotaUsage(quota_window(plan, m, now), used.get(m, 0)) for m in metrics],
    )
