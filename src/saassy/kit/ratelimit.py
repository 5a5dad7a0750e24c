"""Rate limits through the `limits` library: in memory by default, Redis when configured.

A moving window counts exactly (no burst at window edges). Over the limit, `RateLimited`
carries `Retry-After` (whole seconds until a slot frees) and the `X-RateLimit-*` headers; under
it, `hit` returns the same figures, and `RateLimitHeaders` puts them on the answer.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import coredis
import structlog
from coredis.exceptions import RedisError
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.util import WindowStats
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from saassy.kit.errors import RateLimited, ServiceUnavailable

log = structlog.get_logger(__name__)

# Limits come from settings and plans, a handful of strings: parse each once, not per request.
parse_limit = lru_cache(maxsize=256)(parse)


# How often the in-memory counters drop what has left its window (only memory: a hit checks
# the window's times itself, so a later sweep counts nothing wrong).
SWEEP_EVERY_S = 1.0


class SweptMemoryStorage(MemoryStorage):
    """limits' in-memory storage, its expired entries swept at most once a second on the
    event loop. The library starts a sweep after every hit that hops to a worker thread for
    each key: a thread hop per request, and a thread contending with the loop for the GIL
    (measured: the API's submissions 20-30% slower, docs/benchmarks.md)."""

    _next_sweep = 0.0

    # Overrides MemoryStorage's private `__schedule_expiry` (tests/test_rate_limits.py checks
    # the name still exists in the library).
    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_EVERY_S
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        # No await in here: nothing else touches the counters meanwhile, no lock is needed.
        for key, events in list(self.events.items()):
            # Newest first: the entries still in their window come before the first expired.
            kept = bisect.bisect_left(events, -now, key=lambda event: -event.expiry)
            if kept:
                del events[kept:]
            else:
                self.events.pop(key, None)
                self.locks.pop(key, None)
        for key, expires_at in list(self.expirations.items()):
            if expires_at <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)


def create_storage(redis_url: str | None) -> Storage:
    """Redis when a URL is given (shared by every replica), else this process's memory."""
    if not redis_url:
        return SweptMemoryStorage()
    # Our own pool (for limits' default client, coredis), so `close()` can close its sockets.
    pool = coredis.ConnectionPool.from_url(redis_url)
    # limits documents `connection_pool` but types its options as scalars.
    return RedisStorage(f"async+{redis_url}", connection_pool=pool)  # type: ignore[arg-type]


# Where a request's counted limit waits for `RateLimitHeaders` (the ASGI scope's state).
SCOPE_STATE_KEY = "rate_limit"


@dataclass(frozen=True)
class WindowState:
    """A limit as the caller stands after a request: what `X-RateLimit-*` tells them."""

    limit: int
    remaining: int
    # Whole seconds until the oldest counted request leaves the window and frees a slot.
    reset_after_s: int

    @classmethod
    def of(cls, item: RateLimitItem, stats: WindowStats) -> WindowState:
        reset_after_s = max(1, math.ceil(stats.reset_time - time.time()))
        return cls(item.amount, max(0, stats.remaining), reset_after_s)

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_after_s),
        }


@contextmanager
def counters_reachable() -> Iterator[None]:
    """Redis out of reach: refuse with 503 rather than count nothing. Letting requests through
    uncounted would lift the login throttles exactly when Redis is down."""
    try:
        yield
    except (RedisError, OSError) as exc:
        log.warning("ratelimit.storage_unreachable", error=type(exc).__name__)
        raise ServiceUnavailable(
            "Rate-limit counters are out of reach; try again shortly.",
            code="rate_limit_unavailable",
        ) from None


class RateLimiter:
    """Named limits over a shared storage; a hit over the limit raises RateLimited."""

    def __init__(self, storage: Storage, namespace: str = "saassy") -> None:
        self.storage = storage
        self.namespace = namespace
        self._strategy = MovingWindowRateLimiter(storage)

    async def _refuse(self, item: RateLimitItem, key: tuple[str, ...], message: str) -> None:
        state = await self._state(item, key)
        error = RateLimited(state.reset_after_s, message)
        error.headers.update(state.headers() | {"X-RateLimit-Remaining": "0"})
        raise error

    async def _state(self, item: RateLimitItem, key: tuple[str, ...]) -> WindowState:
        return WindowState.of(
            item, await self._strategy.get_window_stats(item, self.namespace, *key)
        )

    async def hit(self, limit: str, *key: str, message: str = "Too many requests.") -> WindowState:
        """Count one request against `limit` for `key`; raise RateLimited when over it, else
        say where the caller stands."""
        item = parse_limit(limit)
        with counters_reachable():
            if not await self._strategy.hit(item, self.namespace, *key):
                await self._refuse(item, key, message)
            return await self._state(item, key)

    async def check(self, limit: str, *key: str, message: str = "Too many requests.") -> None:
        """Raise if the limit is already reached, without counting this call."""
        item = parse_limit(limit)
        with counters_reachable():
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


def expose(request: Request, state: WindowState) -> None:
    """Have `RateLimitHeaders` put `state` on this request's answer, whatever the endpoint
    returns (JSON, 204, a stream, an error)."""
    request.scope.setdefault("state", {})[SCOPE_STATE_KEY] = state


class RateLimitHeaders:
    """ASGI middleware: the `X-RateLimit-*` headers of the limit a request was counted against
    on its answer. A 429 already carries its own and keeps them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The request's `request.state` is this dict: made here so both sides hold the same one.
        scope_state: dict[str, object] = scope.setdefault("state", {})

        async def send_with_headers(message: Message) -> None:
            state = scope_state.get(SCOPE_STATE_KEY)
            if message["type"] == "http.response.start" and isinstance(state, WindowState):
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [
                    (name.lower().encode(), value.encode())
                    for name, value in state.headers().items()
                    if name.lower().encode() not in present
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
