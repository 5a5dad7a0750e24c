"""SQL for API keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import select

from saassy.auth.principal import OrganizationScope
from saassy.kit.pagination import PageParams, keyset
from saassy.kit.repository import RepositoryBase
from saassy.models import ApiKey, User


class ApiKeyRepository(RepositoryBase[ApiKey]):
    model = ApiKey

    async def get_by_digest(self, key_hash: str) -> ApiKey | None:
        return await self.one_or_none(self.select().where(ApiKey.key_hash == key_hash))

    async def get_in_organization(
        self,
        key_id: uuid.UUID,
        organization_id: uuid.UUID,
        scope: OrganizationScope,
        *,
        lock: bool = False,
    ) -> ApiKey | None:
        if organization_id not in scope:
            return None
        statement = self.select().where(
            ApiKey.id == key_id, ApiKey.organization_id == organization_id
        )
        return await self.one_or_none(statement.with_for_update() if lock else statement)

    async def list_for_organization(
        self, organization_id: uuid.UUID, scope: OrganizationScope, params: PageParams
    ) -> Sequence[ApiKey]:
        if organization_id not in scope:
            return []
        statement = self.select().where(ApiKey.organization_id == organization_id)
        return await self.all(keyset(statement, params, ApiKey.created_at, ApiKey.id))

    async def creator_emails(self, keys: Iterable[ApiKey]) -> dict[uuid.UUID, str]:
        """The e-mail of each key's creator, by user id (a deleted user's keys have none)."""
        ids = {key.created_by_user_id for key in keys if key.created_by_user_id is not None}
        if not ids:
            return {}
        rows = await self.session.execute(select(User.id, User.email).where(User.id.in_(ids)))
        return {user_id: email for user_id, email in rows.all()}
