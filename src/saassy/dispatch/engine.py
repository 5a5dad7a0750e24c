"""The task engine as the app holds it: runtime, bus, storage, executor and dispatcher."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.audit.jobs import AuditPruner
from saassy.billing.grace import GraceSweeper
from saassy.billing.stripe_api import billing_enabled
from saassy.config import Settings, redis_url
from saassy.dispatch.dispatcher import Dispatcher
from saassy.dispatch.executor import Executor
from saassy.dispatch.local import LocalExecutor
from saassy.dispatch.refusals import program_refusal, warn_refused
from saassy.dispatch.supervisor import EngineServices
from saassy.dispatch.wakeup import Wakeup
from saassy.events.backends import create_event_bus
from saassy.events.bus import EventBus
from saassy.kit.after_commit import Reaction
from saassy.notifications.task_failed import TaskFailureNotices
from saassy.privacy.erasure_jobs import AccountEraser
from saassy.runtime.base import Runtime
from saassy.storage.base import ArtifactStorage
from saassy.storage.select import build_storage
from saassy.task_output.sweeper import SWEEP_EVERY_S, StorageSweeper
from saassy.tasks.catalog import TaskType
from saassy.tasks.workers import sandbox_workers_dir

log = structlog.get_logger(__name__)


@dataclass
class TaskEngine:
    runtime: Runtime
    events: EventBus
    storage: ArtifactStorage
    executor: Executor
    dispatcher: Dispatcher
    wakeup: Wakeup
    storage_sweeper: StorageSweeper
    workers_dir: Path | None  # `{workers}` in the commands it runs (None: the default)
    # Whether the engine made its bus (and so starts and closes it) or was handed the app's.
    owns_events: bool = True
    # Billing's past-due grace, where billing is on.
    grace_sweeper: GraceSweeper | None = None
    # The audit log's retention.
    audit_pruner: AuditPruner | None = None
    # Accounts whose deletion was asked for.
    account_eraser: AccountEraser | None = None
    _sweeper: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        """Adopt what a crashed predecessor left, then dispatch in the background."""
        if self.owns_events:
            await self.events.start()
        warn_refused(self.runtime, self.dispatcher.catalog, self.workers_dir)
        await self.executor.start()
        self.dispatcher.start()
        # Leftovers of a crashed predecessor (cgroups, mounts, work dirs) would pile up and slow
        # every later sandbox start; freeing them must not delay dispatching. Those of attempts
        # whose leases have yet to run out are only killed: adoption measures and frees them.
        self._sweeper = asyncio.create_task(self._sweep_leftovers(), name="sandbox sweeper")
        self.storage_sweeper.start()
        if self.grace_sweeper is not None:
            self.grace_sweeper.start()
        if self.audit_pruner is not None:
            self.audit_pruner.start()
        if self.account_eraser is not None:
            self.account_eraser.start()

    async def _sweep_leftovers(self) -> None:
        try:
            still_leased = await self.executor.sandboxes_to_recover()
            freed = await self.runtime.sweep(keep=still_leased)
        except Exception:
            log.exception("engine.sweep_failed")
            return
        if freed:
            log.info("engine.swept_leftover_sandboxes", count=freed)

    async def stop(self, grace_s: float = 10.0) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await self.storage_sweeper.stop()
        if self.grace_sweeper is not None:
            await self.grace_sweeper.stop()
        if self.audit_pruner is not None:
            await self.audit_pruner.stop()
        if self.account_eraser is not None:
            await self.account_eraser.stop()
        await self.dispatcher.stop()
        await self.executor.stop(grace_s)
        if self.owns_events:
            await self.events.close()

    def program_refusal(self, task_type: TaskType) -> str | None:
        """Why this engine cannot start `task_type`'s program (None: it can)."""
        return program_refusal(self.runtime, task_type, self.workers_dir)

    def notify_submitted(self, organizations: Iterable[uuid.UUID] | None = None) -> None:
        """Call after a commit that queued tasks for `organizations` (None: any): dispatch now
        rather than at the next poll."""
        if organizations is None:
            self.wakeup.set()
            return
        for organization_id in organizations:
            self.wakeup.set_for(organization_id)


def build_task_engine(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    runtime: Runtime,
    *,
    events: EventBus | None = None,
    storage: ArtifactStorage | None = None,
    wakeup: Wakeup | None = None,
    parallelism: int = 16,
    reserved_slots: int = 0,
    lease: timedelta = timedelta(seconds=15),
    poll_s: float = 0.5,
    adopt_every_s: float = 5.0,
    workers_dir: Path | None = None,
    platform_loss_retries: int | None = None,
    storage_sweep_every_s: float = SWEEP_EVERY_S,
    after_commit: Reaction | None = None,
) -> TaskEngine:
    """The embedded engine: local executor, the storage the settings name, and unless given
    one, its own event bus as the settings say (Redis with `redis_url`, else in memory)."""
    owns_events = events is None
    if events is None:
        events = create_event_bus(redis_url(settings), prefix=settings.redis_prefix)
    storage = storage or build_storage(settings)
    wakeup = wakeup or Wakeup()
    deps = EngineServices(
        sessionmaker=sessionmaker,
        catalog=settings.catalog,
        runtime=runtime,
        events=events,
        storage=storage,
        keyring=settings.vault_keyring,
        work_root=(settings.data_dir / "work").resolve(),
        lease=lease,
        workers_dir=workers_dir or sandbox_workers_dir(getattr(runtime, "work_root", None)),
        platform_loss_retries=(
            settings.platform_loss_retries
            if platform_loss_retries is None
            else platform_loss_retries
        ),
        notices=TaskFailureNotices(settings),
        after_commit=after_commit,
    )
    executor = LocalExecutor(
        deps, parallelism=parallelism, reserved_slots=reserved_slots, on_free=wakeup.set
    )
    dispatcher = Dispatcher(
        sessionmaker,
        settings.catalog,
        executor,
        events,
        wakeup=wakeup,
        lease=lease,
        poll_s=poll_s,
        adopt_every_s=adopt_every_s,
    )
    sweeper = StorageSweeper(sessionmaker, settings.catalog, storage, every_s=storage_sweep_every_s)
    return TaskEngine(
        runtime,
        events,
        storage,
        executor,
        dispatcher,
        wakeup,
        sweeper,
        deps.workers_dir,
        owns_events=owns_events,
        grace_sweeper=GraceSweeper(sessionmaker, settings) if billing_enabled(settings) else None,
        audit_pruner=AuditPruner(sessionmaker, settings.audit_retention_days),
        account_eraser=AccountEraser(sessionmaker, settings, storage),
    )
