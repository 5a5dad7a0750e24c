"""SQL for users, refresh tokens and magic links."""

from __future__ import annotations

from saassy.kit.repository import RepositoryBase
from saassy.models import User


class UserRepository(RepositoryBase[User]):
    model = User

    async def get_by_email(self, email: str) -> User | None:
        return await self.one_or_none(self.select().where(User.email == email.lower()))
