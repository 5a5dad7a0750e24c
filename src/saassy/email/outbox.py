"""Queue e-mail in the caller's transaction; the relay delivers it after commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.config import Settings
from saassy.kit.after_commit import after_commit
from saassy.kit.security import Sealer
from saassy.kit.time import utcnow
from saassy.models import OutboxEmail

SEAL_PURPOSE = "outbox-email"


class EmailQueued:
    """After the commit: the relay delivers now rather than on its next poll."""


EMAIL_QUEUED = EmailQueued()


def outbox_sealer(settings: Settings) -> Sealer:
    """Bodies carry sign-in and invitation links, so they are stored encrypted."""
    return Sealer(settings.signing_secret, SEAL_PURPOSE)


async def queue_email(
    session: AsyncSession, settings: Settings, *, to: str, subject: str, body: str
) -> OutboxEmail:
    """Write the message to the outbox; nothing is sent if the transaction rolls back."""
    email = OutboxEmail(
        to_address=to,
        subject=subject,
        body=outbox_sealer(settings).seal(body),
        next_attempt_at=utcnow(),
    )
    session.add(email)
    await session.flush()
    after_commit(session, EMAIL_QUEUED)
    return email
