"""Telling staff that a month does not reconcile: one e-mail per staff user, once a day."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.billing.reconciliation import MeterLine, Reconciliation
from saassy.config import Settings
from saassy.email.outbox import queue_email
from saassy.models import OutboxEmail, User


def alert_subject(period: date, today: date) -> str:
    return f"Billing does not reconcile for {period:%Y-%m} ({today.isoformat()})"


def describe(line: MeterLine) -> str:
    stripe = "unreadable" if line.stripe is None else str(line.stripe)
    return (
        f"{line.organization} ({line.organization_id}) {line.meter.value}: ledger {line.ledger}, "
        f"reported {line.reported}, pending {line.pending}, not billable {line.not_billable}, "
        f"Stripe {stripe}"
    )


async def alert_staff(
    session: AsyncSession, settings: Settings, result: Reconciliation, today: date
) -> int:
    """Queue the alert to every active staff user unless today's went out; returns how many."""
    subject = alert_subject(result.period, today)
    already = await session.scalar(
        select(func.count()).select_from(OutboxEmail).where(OutboxEmail.subject == subject)
    )
    if already:
        return 0
    body = "\n".join(
        [
            f"These organizations' usage for {result.period:%Y-%m} (windows closed until "
            f"{result.closed_until.isoformat()}) differs between the ledger, our meter reports "
            "and Stripe:",
            "",
            *(describe(line) for line in result.alarming),
            "",
            "docs/billing.md, 'When reconciliation is not 0', says what to do.",
        ]
    )
    staff = await session.scalars(
        select(User.email).where(User.is_staff.is_(True), User.disabled_at.is_(None))
    )
    sent = 0
    for address in staff:
        await queue_email(session, settings, to=address, subject=subject, body=body)
        sent += 1
    return sent
