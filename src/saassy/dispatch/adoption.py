"""Adoption: attempts whose lease ran out lost their supervisor; settle them and move on."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.dispatch.outcome import AttemptOutcome, settle_task
from saassy.dispatch.repository import DispatchRepository
from saassy.events.bus import EventBus, publish_status
from saassy.kit.time import utcnow
from saassy.models import AttemptStatus
from saassy.plans.catalog import Catalog

log = structlog.get_logger(__name__)

BATCH = 100
LOST = "the attempt's supervisor stopped renewing its lease (process died or was stopped)"


async def adopt_orphans(
    sessionmaker: async_sessionmaker[AsyncSession], catalog: Catalog, events: EventBus
) -> int:
    """Mark expired attempts lost and retry or fail their tasks; returns how many."""
    total = 0
    while True:
        changes = []
        async with sessionmaker() as session, session.begin():
            now = utcnow()
            repo = DispatchRepository(session)
            expired = await repo.expired_attempts(now, BATCH)
            for attempt in expired:
                if not await repo.mark_lost(attempt.id, now, LOST):
                    continue
                task = await repo.live_task(attempt.task_id, attempt.number)
                if task is None:
                    continue
                outcome = AttemptOutcome(
                    status=AttemptStatus.lost, error=LOST, error_code="lost", retryable=True
                )
                status = await settle_task(session, catalog, task, attempt.number, outcome, now)
                changes.append((task.organization_id, task.id, attempt.number, status))
        for organization_id, task_id, number, status in changes:
            await publish_status(events, organization_id, task_id, status, number)
        total += len(changes)
        if changes:
            log.warning("attempts adopted", count=len(changes))
        if len(expired) < BATCH:
            return total
