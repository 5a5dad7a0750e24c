"""The e-mail at 80% of a spend cap: once a month, to the organization's owners and admins."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.caps.errors import WHERE_TO_RAISE
from saassy.billing.caps.repository import SpendCapRepository
from saassy.billing.projection import Projection, share_of_cap
from saassy.billing.repository import SubscriptionRepository
from saassy.config import Settings
from saassy.email.outbox import queue_email
from saassy.models import Organization
from saassy.quotas.periods import QuotaWindow

WARN_AT = Decimal("0.8")


async def warn_near_cap(
    session: AsyncSession,
    settings: Settings,
    organization_id: uuid.UUID,
    window: QuotaWindow,
    cap_usd: Decimal,
    projection: Projection,
) -> None:
    """Queue the warning in the admission's transaction, unless this month's went out."""
    caps = SpendCapRepository(session)
    if not await caps.mark_warned(organization_id, window.start):
        return
    organization = await session.get(Organization, organization_id)
    name = organization.name if organization is not None else "Your organization"
    share = share_of_cap(projection.exact_usd, cap_usd) or Decimal(0)
    service = settings.catalog.branding.name
    subject = f"{service}: {name} has used {share:.0%} of its monthly spend cap"
    body = (
        f"{name}'s overage this month comes to ${projection.total_usd} of its ${cap_usd} "
        f"spend cap ({share:.0%}): {projection.tasks_over:,} tasks past the plan and "
        f"{projection.compute_units:.2f} compute units so far.\n\n"
        "Once the cap is reached, tasks past the plan are refused (402 spend_cap_reached) "
        f"until {window.resets_at:%-d %B %Y} (UTC). To allow more, raise the cap with "
        f"{WHERE_TO_RAISE}.\n\n"
        f"This is the only such message this month. -- {service}, {settings.base_url}\n"
    )
    for address in await SubscriptionRepository(session).billing_contacts(organization_id):
        await queue_email(session, settings, to=address, subject=subject, body=body)
