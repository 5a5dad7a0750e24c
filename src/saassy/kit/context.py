"""What the running app holds: settings, the database, the rate limiter, the e-mail relay and
the embedded task engine."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from saassy.config import Settings
from saassy.kit.ratelimit import RateLimiter

if TYPE_CHECKING:
    from saassy.dispatch.engine import TaskEngine


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    limiter: RateLimiter
    # Set after a commit that queued e-mail, so the relay sends it now rather than on its next poll.
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set after a commit that queued tasks, so the dispatcher claims them now.
    dispatch_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # The engine running in this process, if any (`saassy dev`; none in API-only tests).
    task_engine: TaskEngine | None = None
