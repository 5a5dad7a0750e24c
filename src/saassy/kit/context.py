"""What the running app holds: settings, the database, the rate limiter, the e-mail relay."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from saassy.config import Settings
from saassy.kit.ratelimit import RateLimiter


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    limiter: RateLimiter
    # Set after a commit that queued e-mail, so the relay sends it now rather than on its next poll.
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
