"""SQL for API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from saassy.auth.principal import OrganizationScope
from saassy.kit.pagination import PageParams, keyset
from saassy.kit.repository import RepositoryBase
from saassy.models import ApiKey


class ApiKeyRepository(RepositoryBase[ApiKey]):
    model = ApiKey

    async def get_by_digest(self, key_hash: str) -> ApiKey | None:
        return await self.one_or_none(self.select().where(ApiKey.key_hash == key_hash))

    async def get_in_organization(
        self, key_id: uuid.UUID, organization_id: uuid.UUID, scope: OrganizationScope
    ) -> ApiKey | None:
        if organization_id not in scope:
            return None
        return await self.one_or_none(
            self.select().where(ApiKey.id == key_id, ApiKey.organization_id == organization_id)
        )

    async def list_for_organization(
        self, organization_id: uuid.UUID, scope: OrganizationScope, params: PageParams
    ) -> Sequence[ApiKey]:
        if organization_id not in scope:
            return []
        statement = self.select().where(ApiKey.organization_id == organization_id)
        return await self.all(keyset(statement, params, ApiKey.created_at, ApiKey.id))
