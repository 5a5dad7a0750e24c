"""Which event bus a process uses: Redis when a URL is configured, else this process's memory."""

from __future__ import annotations

from saassy.events.bus import EventBus
from saassy.events.memory import MemoryEventBus


def create_event_bus(redis_url: str | None, *, prefix: str = "saassy") -> EventBus:
    """The bus every process sharing `redis_url` and `prefix` hears; in memory without one."""
    if not redis_url:
        return MemoryEventBus()
    from saassy.events.redis import RedisEventBus  # only where Redis is configured

    return RedisEventBus(redis_url, prefix=prefix)
