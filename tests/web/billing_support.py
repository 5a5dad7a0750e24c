"""What the billing page tests share: an app with billing on whose Stripe does not answer (the
page must still render), and subscriptions recorded as Stripe's webhooks record them."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import update

from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import next_month_start, utcnow
from saassy.models import Organization
from saassy.models.billing import BillingCustomer, BillingSubscription
from tests.billing.billing_app import write_catalog
from tests.processes import free_port

FLASH = re.compile(r'<div class="flash (\w+)" role="status">([^<]*)</div>')


def settings_with_stripe_down(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> Settings:
    """Billing on (pro at $49 with overage), pointed at a port nothing listens on."""
    return settings_factory(
        config=write_catalog(tmp_path),
        stripe_secret_key="sk_test_saassy",
        stripe_webhook_secret="whsec_" + "0" * 32,
        stripe_api_base=f"http://127.0.0.1:{free_port()}",
    )


async def record_subscription(
    ctx: AppContext,
    organization_id: str,
    *,
    status: str = "active",
    plan: str = "pro",
    cancel_at_period_end: bool = False,
    past_due_since: datetime | None = None,
    subscribed_at: datetime | None = None,
) -> datetime:
    """The customer, the subscription and the plan as the webhooks leave them; answers the
    period's end. Periods are calendar months: this one from its 1st (renewed), or the first
    one, from `subscribed_at` within this month; each ends at the next month's start."""
    now = utcnow()
    period_end = next_month_start(now)
    period_start = subscribed_at or now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    org = uuid.UUID(organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        session.add(BillingCustomer(organization_id=org, stripe_customer_id=f"cus_{org.hex}"))
        session.add(
            BillingSubscription(
                organization_id=org,
                stripe_subscription_id=f"sub_{org.hex}",
                status=status,
                plan=plan,
                current_period_start=period_start,
                current_period_end=period_end,
                cancel_at_period_end=cancel_at_period_end,
                past_due_since=past_due_since,
                synced_at=now,
            )
        )
        await session.execute(update(Organization).where(Organization.id == org).values(plan=plan))
    return period_end


def flash_of(page: str) -> tuple[str, str] | None:
    found = FLASH.search(page)
    return None if found is None else (found.group(1), found.group(2))
