"""SQL for the e-mail outbox: claiming due messages and recording what became of them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import update

from saassy.kit.repository import RepositoryBase
from saassy.models import OutboxEmail


class OutboxEmailRepository(RepositoryBase[OutboxEmail]):
    model = OutboxEmail

    async def claim_due(self, now: datetime, lease: timedelta, limit: int) -> Sequence[OutboxEmail]:
        """Take up to `limit` due messages for `lease`, counting the attempt.

        On PostgreSQL, `SKIP LOCKED` lets several relays claim disjoint rows; SQLite has one
        writer at a time (`BEGIN IMMEDIATE`), which makes the same read-then-write atomic.
        """
        due = await self.all(
            self.select()
            .where(OutboxEmail.sent_at.is_(None), OutboxEmail.next_attempt_at <= now)
            .order_by(OutboxEmail.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        for email in due:
            email.attempts += 1
            email.next_attempt_at = now + lease
        await self.session.flush()
        return due

    async def mark_sent(self, email_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id == email_id, OutboxEmail.sent_at.is_(None))
            .values(sent_at=now, next_attempt_at=None, last_error=None)
            .execution_options(synchronize_session=False)
        )

    async def mark_failed(self, email_id: uuid.UUID, error: str, retry_at: datetime | None) -> None:
        """Record the failure; `retry_at=None` gives up on the message for good."""
        await self.session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id == email_id, OutboxEmail.sent_at.is_(None))
            .values(last_error=error, next_attempt_at=retry_at)
            .execution_options(synchronize_session=False)
        )
