"""The grace sweep: an organization past due for longer than SAASSY_BILLING_GRACE_DAYS goes
to the default plan, whether or not Stripe sends another event. Runs where the storage sweep
runs (the embedded engine, `saassy scheduler`); the clock is injected for tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.billing.repository import SubscriptionRepository
from saassy.billing.states import PAST_DUE
from saassy.config import Settings
from saassy.kit.background import BackgroundLoop
from saassy.kit.db_outage import log_failed_round
from saassy.kit.time import as_utc, utcnow
from saassy.models.billing import BillingSubscription, PlanChangeSource
from saassy.plans.changes import change_plan

log = structlog.get_logger(__name__)

GRACE_SWEEP_EVERY_S = 600.0


def past_due_before(subscription: BillingSubscription, cutoff: datetime) -> bool:
    since = subscription.past_due_since
    return subscription.status == PAST_DUE and since is not None and as_utc(since) <= cutoff


async def end_expired_grace(session: AsyncSession, settings: Settings, now: datetime) -> int:
    """Move every organization whose grace has ended to the default plan; how many moved."""
    subscriptions = SubscriptionRepository(session)
    cutoff = now - timedelta(days=settings.billing_grace_days)
    default_plan = settings.catalog.default_plan
    moved = 0
    for subscription in await subscriptions.past_due_since_before(cutoff):
        organization = await subscriptions.organization_for_update(subscription.organization_id)
        if organization is None:
            continue
        # Read again under the lock: a payment's webhook may have committed since the list
        # was read, and a paying organization must keep its plan.
        await session.refresh(subscription)
        if not past_due_before(subscription, cutoff):
            continue
        # The grace period takes away the subscribed plan, not one staff assigned since (nor
        # does it move an organization already moved: the sweep sees it every round).
        if organization.plan != subscription.plan:
            continue
        change = await change_plan(
            session,
            organization,
            default_plan,
            source=PlanChangeSource.grace_ended,
            reference=subscription.stripe_subscription_id,
            now=now,
        )
        moved += change is not None
    return moved


class GraceSweeper:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        every_s: float = GRACE_SWEEP_EVERY_S,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.every_s = every_s
        self.clock = clock
        self._loop = BackgroundLoop(self._run, "billing grace sweep")

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def sweep(self) -> int:
        async with self.sessionmaker() as session, session.begin():
            return await end_expired_grace(session, self.settings, self.clock())

    async def _run(self) -> None:
        while True:
            try:
                moved = await self.sweep()
            except Exception as exc:  # the next round tries again
                log_failed_round(log, "billing.grace_sweep_failed", exc)
            else:
                if moved:
                    log.info("billing.grace_ended", organizations=moved)
            await asyncio.sleep(self.every_s)
