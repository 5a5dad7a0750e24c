"""Rate limits through the `limits` library: in memory by default, Redis when configured.

A moving window counts exactly (no burst at window edges). Over the limit, `RateLimited`
carries `Retry-After` (whole seconds until a slot frees) and the `X-RateLimit-*` headers.
"""

from __future__ import annotations

import asyncio
import math
import time
from functools import lru_cache

import coredis
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from saassy.kit.errors import RateLimited

# Limits come from settings and plans, a handful of strings: parse each once, not per request.
parse_limit = lru_cache(maxsize=256)(parse)


def create_storage(redis_url: str | None) -> Storage:
    """Redis when a URL is given (shared by every replica), else this process's memory."""
    if not redis_url:
        return MemoryStorage()
    # Our own pool (for limits' default client, coredis), so `close()` can close its sockets.
    pool = coredis.ConnectionPool.from_url(redis_url)
    # limits documents `connection_pool` but types its options as scalars.
    return RedisStorage(f"async+{redis_url}", connection_pool=pool)  # type: ignore[arg-type]


class RateLimiter:
    """Named limits over a shared storage; a hit over the limit raises RateLimited."""

    def __init__(self, storage: Storage, namespace: str = "saassy") -> None:
        self.storage = storage
        self.namespace = namespace
        self._strategy = MovingWindowRateLimiter(storage)

    async def _refuse(self, item: RateLimitItem, key: tuple[str, ...], message: str) -> None:
        stats = await self._strategy.get_window_stats(item, self.namespace, *key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        error = RateLimited(retry_after, message)
        error.headers.update(
            {
                "X-RateLimit-Limit": str(item.amount),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(retry_after),
            }
        )
        raise error

    async def hit(self, limit: str, *key: str, message: str = "Too many requests.") -> None:
        """Count one request against `limit` for `key`; raise RateLimited when over it."""
        item = parse_limit(limit)
        if not await self._strategy.hit(item, self.namespace, *key):
            await self._refuse(item, key, message)

    async def check(self, limit: str, *key: str, message: str = "Too many requests.") -> None:
        """Raise if the limit is already reached, without counting this call."""
        item = parse_limit(limit)
        if not await self._strategy.test(item, self.namespace, *key):
            await self._refuse(item, key, message)

    async def clear(self, limit: str, *key: str) -> None:
        await self._strategy.clear(parse_limit(limit), self.namespace, *key)

    async def close(self) -> None:
        """Release the storage: drop in-memory counters, close Redis connections."""
        if isinstance(self.storage, MemoryStorage):
            # Its expiry sweep may be mid-run: clearing the counters under it made it fail
            # with a KeyError nobody retrieved (noise at exit, and a flaky unraisable in tests).
            timer = getattr(self.storage, "timer", None)
            if isinstance(timer, asyncio.Task):
                timer.cancel()
                await asyncio.gather(timer, return_exceptions=True)
            await self.storage.reset()
        if isinstance(self.storage, RedisStorage):
            pool = self.storage.options.get("connection_pool")
            if isinstance(pool, coredis.ConnectionPool):
                pool.disconnect()
