"""What the running app holds: settings, the database, the rate limiter, artifact storage, the
event bus, the e-mail relay's wake-up and the embedded task engine; and how it reacts to a
committed unit of work."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import stripe
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from saassy.auth.access_cache import AccessChanged, RecentReads
from saassy.auth.repository import KeyHolder, UserAccess
from saassy.config import Settings
from saassy.email.outbox import EmailQueued
from saassy.events.bus import EventBus, publish_status
from saassy.kit.ratelimit import RateLimiter
from saassy.models import TaskStatus
from saassy.privacy.export_effects import ExportQueued
from saassy.schedules.effects import ScheduleChanged
from saassy.storage.base import ArtifactStorage
from saassy.tasks.catalog import TaskType
from saassy.tasks.effects import CancelRequested, TaskQueued
from saassy.webhooks.events import WebhookMessagesQueued

if TYPE_CHECKING:
    from saassy.dispatch.engine import TaskEngine


@dataclass
class AppContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    limiter: RateLimiter
    # Where artifacts are: downloads are served from it also where no engine runs.
    storage: ArtifactStorage
    # In memory, or Redis when configured (then shared with the engine and other processes).
    events: EventBus
    # Set after a commit that queued e-mail, so the relay sends it now rather than on its next poll.
    outbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set after a commit that created a schedule or moved its due time: the schedule loop here
    # looks again now.
    schedule_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set after a commit that queued webhook messages (and when a task ends here): the webhook
    # relay delivers now rather than on its next poll.
    webhook_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # Set after a commit that requested a data export: the export builder here starts it now.
    export_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    # The engine running in this process, if any (`saassy dev`; none in API-only tests). An
    # engine in another process finds new tasks and cancel requests by polling.
    task_engine: TaskEngine | None = None
    # Billing's Stripe client; None when billing is off (no SAASSY_STRIPE_SECRET_KEY).
    stripe_api: stripe.StripeClient | None = None
    # API keys that authenticated lately, and the access of users whose access tokens did
    # (auth/access_cache.py); the app sizes both from settings.
    key_cache: RecentReads[str, KeyHolder] = field(default_factory=lambda: RecentReads(ttl_s=0))
    user_cache: RecentReads[uuid.UUID, UserAccess] = field(
        default_factory=lambda: RecentReads(ttl_s=0)
    )

    def program_refusal(self, task_type: TaskType) -> str | None:
        """Why this process's engine cannot start `task_type`'s program (None: it can, or the
        engine runs elsewhere: a worker host checks its own, at start and per attempt)."""
        if self.task_engine is None:
            return None
        return self.task_engine.program_refusal(task_type)

    def live_events(self) -> EventBus | None:
        """The bus a task's live events arrive on here: the one this process's engine publishes
        on, else the app's where it spans processes; None where nothing would ever arrive."""
        if self.task_engine is not None:
            return self.task_engine.events
        return self.events if self.events.spans_processes else None

    async def after_commit(self, effects: Iterable[object]) -> None:
        """Act on what a committed unit of work did (kit/after_commit.py)."""
        queued: set[uuid.UUID] = set()
        for effect in effects:
            match effect:
                case EmailQueued():
                    self.outbox_wakeup.set()
                case ScheduleChanged():
                    self.schedule_wakeup.set()
                case WebhookMessagesQueued():
                    self.webhook_wakeup.set()
                case ExportQueued():
                    self.export_wakeup.set()
                case TaskQueued(organization_id=organization_id, task_id=task_id):
                    queued.add(organization_id)
                    if (events := self.live_events()) is not None:
                        await publish_status(events, organization_id, task_id, TaskStatus.queued, 0)
                case CancelRequested(task_id=task_id):
                    if self.task_engine is not None:
                        await self.task_engine.executor.cancel(task_id)
                case AccessChanged():
                    self.key_cache.clear()
                    self.user_cache.clear()
                case _:
                    raise TypeError(f"no reaction to {effect!r}")
        # After publishing: `queued` reaches viewers before the dispatcher's `running`.
        if queued and self.task_engine is not None:
            self.task_engine.notify_submitted(queued)
