"""`saassy scheduler`: the dispatcher for Celery workers, adoption, the storage sweep, the
schedules' loop, billing's grace sweep and the audit log's retention.

Several may run at once: their claims lock organizations and tasks with `FOR UPDATE SKIP
LOCKED` (PostgreSQL), so none claims what another holds, and adoption skips locked attempts.
It claims when the event bus says a task was queued (the API) or ended (a worker frees its
slot), and otherwise every `SAASSY_DISPATCH_POLL_S`: the bus is best effort, the poll is the
floor.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from datetime import timedelta
from functools import partial

import structlog

from saassy.audit.jobs import AuditPruner
from saassy.billing.grace import GraceSweeper
from saassy.billing.reporting import meter_reporting_loop
from saassy.billing.stripe_api import billing_enabled
from saassy.config import Settings, redis_url
from saassy.dispatch.broker import celery_app, hard_time_limit_s
from saassy.dispatch.celery import CeleryExecutor
from saassy.dispatch.dispatcher import Dispatcher
from saassy.events.backends import create_event_bus
from saassy.events.bus import EventBus, TaskEvent, publish_status
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.models import TERMINAL_STATUSES, TaskStatus
from saassy.notifications.task_failed import TaskFailureNotices
from saassy.privacy.erasure_jobs import AccountEraser
from saassy.privacy.export_jobs import ExportBuilder
from saassy.schedules.jobs import Committed, ScheduleLoop
from saassy.storage.select import build_storage
from saassy.task_output.sweeper import StorageSweeper
from saassy.tasks.effects import TaskQueued
from saassy.webhooks.relay import webhook_relay_loop

log = structlog.get_logger(__name__)


# A task to claim (queued, or queued again for a retry), or a worker's slot freed.
WAKING_STATUSES = frozenset({TaskStatus.queued.value, *(s.value for s in TERMINAL_STATUSES)})


def wake_on_status(wakeup: asyncio.Event, organization_id: uuid.UUID, event: TaskEvent) -> None:
    if event.kind == "task.status" and event.data.get("status") in WAKING_STATUSES:
        wakeup.set()


def dispatch_queued(events: EventBus, wakeup: asyncio.Event) -> Committed:
    """What a schedule's committed run asks of this process: tell viewers its task is queued,
    and claim it now rather than at the next poll."""

    async def react(effects: list[object]) -> None:
        for effect in effects:
            if isinstance(effect, TaskQueued):
                await publish_status(
                    events, effect.organization_id, effect.task_id, TaskStatus.queued, 0
                )
        wakeup.set()

    return react


async def run_scheduler(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Dispatch to the workers until SIGTERM or SIGINT (or `stop`)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    database = create_engine(settings.resolved_database_url, pool_size=settings.database_pool_size)
    sessionmaker = create_sessionmaker(database)
    events = create_event_bus(redis_url(settings), prefix=settings.redis_prefix)
    await events.start()
    lease = timedelta(seconds=settings.task_lease_s)
    executor = CeleryExecutor(
        sessionmaker,
        settings.catalog,
        events,
        celery_app(settings),
        queue=settings.broker_queue,
        parallelism=settings.executor_parallelism,
        reserved_slots=settings.executor_reserved_slots,
        lease=lease,
        wait_limit_s=hard_time_limit_s(settings),
        platform_loss_retries=settings.platform_loss_retries,
        notices=TaskFailureNotices(settings),
    )
    dispatcher = Dispatcher(
        sessionmaker,
        settings.catalog,
        executor,
        events,
        lease=lease,
        poll_s=settings.dispatch_poll_s,
        adopt_every_s=min(5.0, settings.task_lease_s / 3),
    )
    events.watch(partial(wake_on_status, dispatcher.wakeup))
    storage = build_storage(settings)  # the sweep's retention and orphans: the shared store
    await storage.check()
    sweeper = StorageSweeper(sessionmaker, settings.catalog, storage)
    grace = GraceSweeper(sessionmaker, settings) if billing_enabled(settings) else None
    reporting = meter_reporting_loop(sessionmaker, settings)  # None when billing is off
    schedules = ScheduleLoop(
        sessionmaker, settings, on_committed=dispatch_queued(events, dispatcher.wakeup)
    )
    pruner = AuditPruner(sessionmaker, settings.audit_retention_days)
    eraser = AccountEraser(sessionmaker, settings, storage)
    # Outcomes are committed by the workers, and adoption's here hands over nothing.
    webhooks = webhook_relay_loop(
        sessionmaker, settings, asyncio.Event(), events, every_task_end=True
    )
    exporter = ExportBuilder(sessionmaker, settings, storage)
    await executor.start()
    dispatcher.start()
    sweeper.start()
    schedules.start()
    if grace is not None:
        grace.start()
    if reporting is not None:
        reporting.start()
    pruner.start()
    eraser.start()
    webhooks.start()
    exporter.start()
    log.info("scheduler.started", executor_id=executor.executor_id)
    try:
        await stop.wait()
    finally:
        await schedules.stop()
        await webhooks.stop()
        await exporter.stop()
        await pruner.stop()
        await eraser.stop()
        if reporting is not None:
            await reporting.stop()
        if grace is not None:
            await grace.stop()
        await sweeper.stop()
        await dispatcher.stop()
        await executor.stop()
        await events.close()
        await database.dispose()
        log.info("scheduler.stopped")
