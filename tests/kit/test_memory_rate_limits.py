"""The in-memory rate-limit counters sweep on the loop, at most once a second, and a sweep drops
only what has left its window."""

from __future__ import annotations

import time

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from saassy.kit.ratelimit import SWEEP_EVERY_S, SweptMemoryStorage, create_storage


def test_the_override_still_names_the_librarys_sweep() -> None:
    # Were it renamed, the library's own sweep (a thread per key after every hit) would run.
    assert hasattr(MemoryStorage, "_MemoryStorage__schedule_expiry")
    assert isinstance(create_storage(None), SweptMemoryStorage)


async def test_a_hit_starts_no_sweep_task_of_the_librarys() -> None:
    storage = SweptMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    for _ in range(3):
        assert await limiter.hit(parse("10/minute"), "k")
    assert storage.timer is None


async def test_the_sweep_drops_only_entries_out_of_their_window() -> None:
    storage = SweptMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    item = parse("5/minute")
    for _ in range(3):
        assert await limiter.hit(item, "k")
    storage._sweep(time.time())
    assert (await limiter.get_window_stats(item, "k")).remaining == 2
    storage._sweep(time.time() + 61)
    assert storage.events == {}
    assert (await limiter.get_window_stats(item, "k")).remaining == 5


async def test_a_limit_holds_between_sweeps() -> None:
    storage = SweptMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)
    item = parse("2/minute")
    assert await limiter.hit(item, "k")
    assert await limiter.hit(item, "k")
    assert not await limiter.hit(item, "k")
    assert storage._next_sweep <= time.time() + SWEEP_EVERY_S
