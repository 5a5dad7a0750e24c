"""SQL for users, refresh tokens and magic links."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Update, update
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.kit.repository import RepositoryBase
from saassy.models import MagicLink, RefreshToken, User


async def _rows_changed(session: AsyncSession, statement: Update) -> int:
    result = cast(CursorResult[Any], await session.execute(statement))
    return result.rowcount


class UserRepository(RepositoryBase[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        return await self.one_or_none(self.select().where(User.email == email.lower()))

    async def lock(self, user_id: uuid.UUID) -> User | None:
        """The user, locked FOR UPDATE: serializes what one user may do only so many times."""
        return await self.one_or_none(self.select().where(User.id == user_id).with_for_update())


class RefreshTokenRepository(RepositoryBase[RefreshToken]):
    model = RefreshToken

    async def get_by_digest(self, digest: str) -> RefreshToken | None:
        return await self.one_or_none(self.select().where(RefreshToken.token_hash == digest))

    async def mark_used(self, token_id: uuid.UUID, now: datetime) -> bool:
        """Use the token once; False when another request used or revoked it first."""
        statement = (
            update(RefreshToken)
            .where(
                RefreshToken.id == token_id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return await _rows_changed(self.session, statement) == 1

    async def revoke_family(self, family_id: uuid.UUID, now: datetime) -> int:
        statement = (
            update(RefreshToken)
            .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return await _rows_changed(self.session, statement)

    async def revoke_user_families(self, user_id: uuid.UUID, now: datetime) -> int:
        """End every API session of the user (each refresh family, live or not)."""
        statement = (
            update(RefreshToken)
            .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return await _rows_changed(self.session, statement)


class MagicLinkRepository(RepositoryBase[MagicLink]):
    model = MagicLink

    async def get_by_digest(self, digest: str) -> MagicLink | None:
        return await self.one_or_none(self.select().where(MagicLink.token_hash == digest))

    async def consume(self, link_id: uuid.UUID, now: datetime) -> bool:
        """Use the link once; False when it was already used (by a concurrent request too)."""
        statement = (
            update(MagicLink)
            .where(MagicLink.id == link_id, MagicLink.used_at.is_(None), MagicLink.expires_at > now)
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return await _rows_changed(self.session, statement) == 1
