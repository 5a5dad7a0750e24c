"""E-mails when an organization's monthly quota reaches 80% and 100%: once per threshold.

Checked on each reservation of the monthly quota from the counter the reservation returned, so
the common case costs no query. The reservation that crosses a threshold inserts the unique key
(organization, metric, period, threshold) into `notices_sent`; only the transaction whose insert
lands queues the e-mail, so units given back and taken again, or concurrent workers, never send
it twice. Daily action caps are not e-mailed: they would write every day.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.config import Settings
from saassy.email.outbox import queue_email
from saassy.kit.time import utcnow
from saassy.models import Organization, Role
from saassy.notifications.kinds import NotificationKind, why_footer
from saassy.notifications.repository import NoticeRepository, PreferenceRepository
from saassy.plans.catalog import Plan
from saassy.quotas.periods import Period, QuotaWindow

WARN_PERCENT = 80
USAGE_PAGE = "/app/billing"
ROLES = (Role.owner, Role.admin)


def thresholds_crossed(limit: int | None, before: int, after: int) -> list[int]:
    """The percentages (80, 100) that usage passed going from `before` to `after` units."""
    if limit is None or limit <= 0:
        return []
    return [p for p in (WARN_PERCENT, 100) if before * 100 < p * limit <= after * 100]


def notice_key(organization_id: uuid.UUID, window: QuotaWindow, percent: int) -> str:
    return f"quota:{organization_id}:{window.metric}:{window.start.isoformat()}:{percent}"


async def quota_reserved(
    session: AsyncSession,
    settings: Settings,
    plan: Plan,
    organization_id: uuid.UUID,
    window: QuotaWindow,
    used: int,
    amount: int = 1,
) -> int:
    """After `amount` was reserved and the counter reads `used`: queue the threshold
    e-mails this reservation crossed, unless another transaction did. How many thresholds."""
    if window.period is not Period.month:
        return 0
    crossed = thresholds_crossed(window.limit, used - amount, used)
    notices = NoticeRepository(session)
    done = 0
    for percent in crossed:
        if await notices.claim_once(notice_key(organization_id, window, percent), utcnow()):
            await _send(session, settings, plan, organization_id, window, used, percent)
            done += 1
    return done


async def _send(
    session: AsyncSession,
    settings: Settings,
    plan: Plan,
    organization_id: uuid.UUID,
    window: QuotaWindow,
    used: int,
    percent: int,
) -> None:
    assert window.limit is not None
    kind = NotificationKind.quota_warning if percent < 100 else NotificationKind.quota_exhausted
    recipients = await PreferenceRepository(session).members_wanting(organization_id, kind, ROLES)
    if not recipients:
        return
    organization = await session.get(Organization, organization_id)
    name = organization.name if organization is not None else "Your organization"
    service = settings.catalog.branding.name
    resets = f"{window.resets_at:%-d %B %Y} (UTC)"
    link = f"{settings.base_url.rstrip('/')}{USAGE_PAGE}"
    if percent < 100:
        subject = f"{service}: {name} has used {percent}% of its monthly tasks"
        what = (
            f"{name} has used {used:,} of the {window.limit:,} tasks its {plan.name} plan "
            f"includes this month ({percent}%). The count resets on {resets}."
        )
    else:
        subject = f"{service}: {name} has used all of its monthly tasks"
        after = (
            "While the subscription is paid up, further tasks are billed as overage (within "
            "the spend cap, if one is set); otherwise they are refused until then."
            if plan.overage_usd_per_task is not None
            else "Further tasks are refused (402 quota_exceeded) until then."
        )
        what = (
            f"{name} has used all {window.limit:,} tasks its {plan.name} plan includes this "
            f"month. The count resets on {resets}. {after}"
        )
    body = (
        f"{what}\n\nUsage and plans: {link}\n"
        f"{why_footer(settings.base_url, f'you are an owner or admin of {name}', kind)}"
    )
    for recipient in recipients:
        await queue_email(session, settings, to=recipient.email, subject=subject, body=body)
