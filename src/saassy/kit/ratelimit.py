"""Rate limits through the `limits` library: in memory by default, Redis when configured."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from saassy.kit.errors import RateLimited


def create_storage(redis_url: str | None) -> Storage:
    if redis_url:
        storage = storage_from_string(f"async+{redis_url}")
        assert isinstance(storage, Storage)
        return storage
    return MemoryStorage()


class RateLimiter:
    """Named limits over a shared storage; a hit over the limit raises RateLimited."""

    def __init__(self, storage: Storage, namespace: str = "saassy") -> None:
        self.storage = storage
        self.namespace = namespace
        self._strategy = MovingWindowRateLimiter(storage)

    async def retry_after(self, item: RateLimitItem, *key: str) -> int:
        stats = await self._strategy.get_window_stats(item, self.namespace, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def hit(self, limit: str, *key: str, message: str = "Too many requests.") -> None:
        item = parse(limit)
        if not await self._strategy.hit(item, self.namespace, *key):
            raise RateLimited(await self.retry_after(item, *key), message)

    async def check(self, limit: str, *key: str, message: str = "Too many requests.") -> None:
        """Raise if the limit is already reached, without counting this call."""
        item = parse(limit)
        if not await self._strategy.test(item, self.namespace, *key):
            raise RateLimited(await self.retry_after(item, *key), message)

    async def clear(self, limit: str, *key: str) -> None:
        await self._strategy.clear(parse(limit), self.namespace, *key)

    async def close(self) -> None:
        await self.storage.reset() if isinstance(self.storage, MemoryStorage) else None
