"""The e-mails billing sends, through the outbox (sent only if the transaction commits)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.config import Settings
from saassy.email.outbox import queue_email
from saassy.models import Organization, Role
from saassy.notifications.kinds import NotificationKind, why_footer
from saassy.notifications.repository import PreferenceRepository

BILLING_PAGE = "/app/billing"


async def notify_payment_failed(
    session: AsyncSession, settings: Settings, organization: Organization, plan: str
) -> None:
    """Once per past-due spell: to the organization's owners and admins who did not turn
    payment e-mails off."""
    days = settings.billing_grace_days
    catalog = settings.catalog
    name = catalog.branding.name
    link = f"{settings.base_url.rstrip('/')}{BILLING_PAGE}"
    fallback = catalog.plan(catalog.default_plan).name
    body = (
        f"The latest payment for {organization.name}'s {catalog.plan(plan).name} plan on {name} "
        "failed.\n\n"
        f"Update your card at {link}: you have {days} day{'s' if days != 1 else ''} before the "
        f"organization moves to the {fallback} plan. Stripe retries the payment meanwhile.\n"
        + why_footer(
            settings.base_url,
            f"you are an owner or admin of {organization.name}",
            NotificationKind.payment_failed,
        )
    )
    recipients = await PreferenceRepository(session).members_wanting(
        organization.id, NotificationKind.payment_failed, (Role.owner, Role.admin)
    )
    for recipient in recipients:
        await queue_email(
            session,
            settings,
            to=recipient.email,
            subject=f"{name}: payment failed, update your card",
            body=body,
        )
