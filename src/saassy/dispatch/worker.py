"""`saassy worker`: the Celery executor's worker side, the local executor fed by messages.

One asyncio loop per worker process, in a thread of its own, runs a `LocalExecutor` (its lease
keeper, its supervisors, adoption of what dead workers of this host left, measured). Celery's
thread pool (`--concurrency N` threads, one message each: prefetch 1) hands each message to
that loop and waits for the attempt's end, so the message is acknowledged only then (late
ack). The message is identity only: the worker takes the attempt over in the database
(fenced by the scheduler's lease and the attempt number) and the supervisor reads the rest.
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from datetime import timedelta
from typing import Any

import structlog
from celery.exceptions import SecurityWarning  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine

from saassy.config import Settings, redis_url
from saassy.dispatch.broker import RUN_ATTEMPT, AttemptMessage, celery_app
from saassy.dispatch.celery import CELERY_KIND, celery_executor_id
from saassy.dispatch.executor import AttemptRef
from saassy.dispatch.local import LocalExecutor
from saassy.dispatch.refusals import warn_refused
from saassy.dispatch.repository import DispatchRepository
from saassy.dispatch.supervisor import EngineServices
from saassy.dispatch.worker_pool import WakingThreadPool
from saassy.events.backends import create_event_bus
from saassy.events.bus import EventBus
from saassy.kit.background import BackgroundLoop
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.kit.db_outage import OutageWatch, is_database_outage, probe, through_outage
from saassy.kit.time import utcnow
from saassy.notifications.task_failed import TaskFailureNotices
from saassy.runtime.base import Runtime
from saassy.storage.select import build_storage
from saassy.tasks.workers import sandbox_workers_dir

log = structlog.get_logger(__name__)

# How long an attempt's take-over or outcome waits for a database out of reach.
DATABASE_WAIT_S = 600.0


class AttemptWorker:
    """The attempts of one worker process, on an event loop in a thread of its own."""

    def __init__(self, settings: Settings, runtime: Runtime, concurrency: int) -> None:
        self.settings = settings
        self.runtime = runtime
        self.concurrency = concurrency
        self.lease = timedelta(seconds=settings.task_lease_s)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="attempts", daemon=True)
        self._database: AsyncEngine | None = None
        self._executor: LocalExecutor | None = None
        # What dead workers of this host left is measured here before a scheduler (which has
        # no sandbox) takes it, so this runs more often than the lease lasts.
        self._adoption = BackgroundLoop(self._adopt_now_and_then, "adoption")
        self._abandoning = False
        self._events: EventBus | None = None
        self._take_over_outage = OutageWatch("worker take-over")

    @property
    def executor(self) -> LocalExecutor:
        assert self._executor is not None, "the worker has not started"
        return self._executor

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result()

    async def _start(self) -> None:
        settings = self.settings
        self._database = create_engine(
            settings.resolved_database_url, pool_size=settings.database_pool_size
        )
        # Live logs reach API processes only over a shared bus (Redis), and downloads find
        # artifacts only in shared storage (S3): both as the settings say.
        self._events = create_event_bus(redis_url(settings), prefix=settings.redis_prefix)
        await self._events.start()
        storage = build_storage(settings)
        await storage.check()
        deps = EngineServices(
            sessionmaker=create_sessionmaker(self._database),
            catalog=settings.catalog,
            runtime=self.runtime,
            events=self._events,
            storage=storage,
            keyring=settings.vault_keyring,
            work_root=(settings.data_dir / "work").resolve(),
            lease=self.lease,
            workers_dir=sandbox_workers_dir(getattr(self.runtime, "work_root", None)),
            platform_loss_retries=settings.platform_loss_retries,
            notices=TaskFailureNotices(settings),
        )
        warn_refused(self.runtime, settings.catalog, deps.workers_dir)
        self._executor = LocalExecutor(
            deps, parallelism=self.concurrency, executor_id=celery_executor_id(CELERY_KIND)
        )
        await self._executor.start()  # adopts what expired already
        try:
            keep = await self._executor.sandboxes_to_recover()
            freed = await self.runtime.sweep(keep=keep)
        except Exception:
            log.exception("worker.sweep_failed")
        else:
            if freed:
                log.info("worker.swept_leftover_sandboxes", count=freed)
        self._adoption.start()
        log.info("worker.started", executor_id=self._executor.executor_id)

    async def _adopt_now_and_then(self) -> None:
        outage = OutageWatch("worker adoption")
        adopt_after = 0.0
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                if outage.out:
                    await probe(self.executor.deps.sessionmaker)
                    outage.succeeded()
                    # Back: leases ran on while nobody could renew them. The workers whose
                    # supervisors lived through it renew within a third of a lease, so only
                    # what is still expired a lease from now was orphaned.
                    adopt_after = time.monotonic() + self.lease.total_seconds()
                if time.monotonic() < adopt_after:
                    continue
                await self.executor.adopt()
                # A sibling worker of this host that died left sandboxes behind, and one past
                # its deadline may still run: not only at start, they are freed (or killed).
                keep = await self.executor.sandboxes_to_recover()
                await self.runtime.sweep(keep=keep)
                outage.succeeded()
            except Exception as exc:
                if is_database_outage(exc):
                    outage.failed(exc)
                else:
                    log.exception("worker.adoption_failed")

    def run(self, message: AttemptMessage) -> None:
        """From a Celery pool thread: run the attempt here, return once it has ended."""
        asyncio.run_coroutine_threadsafe(self._run(message), self.loop).result()

    async def _run(self, message: AttemptMessage) -> None:
        executor = self.executor

        async def take_over() -> bool:
            async with executor.deps.sessionmaker() as session, session.begin():
                return await DispatchRepository(session).take_over(
                    message.task_id,
                    message.organization_id,
                    message.attempt_number,
                    message.sent_by,
                    executor.executor_id,
                    utcnow(),
                    self.lease,
                )

        # A message taken while the database is away waits for it: failing it would leave
        # the attempt leased to the scheduler until its lease runs out, late for nothing.
        taken = await through_outage(
            take_over, self._take_over_outage, give_up_after_s=DATABASE_WAIT_S
        )
        if not taken:  # a duplicate, or adopted after its lease ran out: nothing to run
            log.info("worker.attempt_not_ours", task_id=str(message.task_id))
            return
        ref = AttemptRef(
            task_id=message.task_id,
            organization_id=message.organization_id,
            attempt_number=message.attempt_number,
            executor_id=executor.executor_id,
        )
        await executor.submit(ref)
        supervising = executor.supervising(ref)
        if supervising is not None:
            await asyncio.wait({supervising})

    def abandon_all(self) -> None:
        """Cold shutdown: kill every sandbox now and hand its attempt to adoption, measured;
        the pool threads waiting for them return, and their messages are acknowledged."""
        if not self._abandoning and self._executor is not None:
            self._abandoning = True
            asyncio.run_coroutine_threadsafe(self._executor.stop(0), self.loop)

    def stop(self) -> None:
        """After Celery stopped: a warm shutdown left no attempt running; kill any other."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()

    async def _stop(self) -> None:
        await self._adoption.stop()
        if self._executor is not None:
            await self._executor.stop(0)
        if self._events is not None:
            await self._events.close()
        if self._database is not None:
            await self._database.dispose()


def run_worker(settings: Settings, runtime: Runtime, concurrency: int) -> int:
    """Serve attempts until Celery's warm shutdown (SIGTERM); returns the exit code."""
    app = celery_app(settings)
    attempts = AttemptWorker(settings, runtime, concurrency)

    @app.task(name=RUN_ATTEMPT)  # type: ignore[untyped-decorator]
    def run_attempt(**message: Any) -> None:
        attempts.run(AttemptMessage.model_validate(message))

    class AttemptPool(WakingThreadPool):
        def terminate_job(self, pid: int, signal: int | None = None) -> None:
            attempts.abandon_all()  # Celery's cold shutdown ends every running task this way

    # Sandboxes need root (a uid and a cgroup each); the customers' code never runs as it, and
    # Celery's advice to pass --uid does not apply to `saassy worker`.
    warnings.filterwarnings("ignore", category=SecurityWarning)
    attempts.start()
    try:
        worker = app.Worker(
            pool=AttemptPool,
            concurrency=concurrency,
            queues=[settings.broker_queue],
            without_gossip=True,
            without_mingle=True,
            loglevel="INFO",
            quiet=True,  # its banner shows the broker's address
        )
        worker.start()
        return int(worker.exitcode or 0)
    finally:
        attempts.stop()
