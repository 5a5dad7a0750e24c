"""Members with roles and preferences, made straight in the database."""

from __future__ import annotations

import uuid

from saassy.context import AppContext
from saassy.models import Membership, Role
from saassy.notifications.kinds import NotificationKind
from saassy.notifications.repository import PreferenceRepository
from tests.email.mail import Mail, outbox


async def join(ctx: AppContext, organization_id: str, user_id: str, role: Role) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            Membership(
                organization_id=uuid.UUID(organization_id), user_id=uuid.UUID(user_id), role=role
            )
        )


async def choose(ctx: AppContext, user_id: str, kind: NotificationKind, enabled: bool) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        await PreferenceRepository(session).put(uuid.UUID(user_id), kind, enabled)


async def mails_about(ctx: AppContext, words: str) -> list[Mail]:
    return [mail for mail in await outbox(ctx) if words in mail.subject]
