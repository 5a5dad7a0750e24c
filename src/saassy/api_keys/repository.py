"""SQL for API keys."""

from __future__ import annotations

from saassy.kit.repository import RepositoryBase
from saassy.models import ApiKey


class ApiKeyRepository(RepositoryBase[ApiKey]):
    model = ApiKey

    async def get_by_digest(self, key_hash: str) -> ApiKey | None:
        return await self.one_or_none(self.select().where(ApiKey.key_hash == key_hash))
