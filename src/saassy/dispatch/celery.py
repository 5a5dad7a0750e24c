"""The Celery executor's scheduler side: claimed attempts go to workers through the broker.

The dispatcher claims attempts for this executor as for the local one (leased, fenced by
attempt number); `submit` sends one identity-only message per attempt. Until a worker takes
the attempt over (`DispatchRepository.take_over`: the lease becomes the worker's), this
scheduler renews its lease, for at most the hard time limit: a message the broker lost then
lets the lease run out, and adoption runs the attempt again. Workers notice cancel requests in
the database (their lease keeper), so `cancel` here does nothing.

Capacity: `parallelism` bounds the attempts dispatched or running on every Celery worker
together (counted in the database, so several schedulers share it): set it to the workers'
total `--concurrency`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.dispatch.adoption import adopt_orphans
from saassy.dispatch.broker import RUN_ATTEMPT, AttemptMessage, BrokerProbe
from saassy.dispatch.executor import AttemptRef, Executor
from saassy.dispatch.lease import LeaseKeeper
from saassy.dispatch.outcome import PLATFORM_LOSS_RETRIES
from saassy.dispatch.repository import DispatchRepository
from saassy.events.bus import EventBus
from saassy.models import Task
from saassy.notifications.task_failed import TaskFailureNotices
from saassy.plans.catalog import Catalog

log = structlog.get_logger(__name__)

# Every Celery executor id starts with it, schedulers' and workers': their live attempts
# share the workers' capacity.
CELERY_KIND = "celery"
BROKER_PROBE_S = 2.0


def celery_executor_id(kind: str) -> str:
    """`celery-scheduler:<host>:...` or `celery:<host>:...`: unique per process."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class CeleryExecutor(Executor):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        catalog: Catalog,
        events: EventBus,
        app: Any,
        *,
        queue: str,
        parallelism: int,
        reserved_slots: int = 0,
        lease: timedelta,
        wait_limit_s: float,
        platform_loss_retries: int = PLATFORM_LOSS_RETRIES,
        notices: TaskFailureNotices | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.notices = notices
        self.catalog = catalog
        self.events = events
        self.app = app
        self.queue = queue
        self.parallelism = parallelism
        self.reserved_slots = reserved_slots
        self.lease = lease
        self.wait_limit_s = wait_limit_s
        self.platform_loss_retries = platform_loss_retries
        self.executor_id = celery_executor_id(f"{CELERY_KIND}-scheduler")
        self.leases = LeaseKeeper(sessionmaker, self.executor_id, lease=lease)
        self._waiting: dict[uuid.UUID, tuple[AttemptRef, float]] = {}  # sent, not taken yet
        self._unsent: list[AttemptRef] = []
        self._counted = 0  # live Celery attempts at the last heartbeat
        self._claimed_since = 0
        # kombu's producers are not for concurrent use: one thread sends, in claim order.
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broker sender")
        self._probe = BrokerProbe(app, queue)  # used in the sender's thread only
        self._probed_at = 0.0

    @property
    def active(self) -> int:
        if self._unsent:  # the broker is out of reach: claim nothing more until it is back
            return self.parallelism + self.reserved_slots
        return self._counted + self._claimed_since

    async def start(self) -> None:
        self.leases.start()
        await self.heartbeat()

    async def submit(self, attempt: AttemptRef, task: Task | None = None) -> None:
        self.leases.watch(attempt)
        self._waiting[attempt.task_id] = (attempt, time.monotonic())
        self._claimed_since += 1
        try:
            await self._send(attempt)
        except Exception as exc:  # kombu raises the transport's own errors
            if not self._unsent:  # one line per outage: the probe says when it is back
                log.warning(
                    "broker.send_failed",
                    task_id=str(attempt.task_id),
                    error_type=type(exc).__name__,
                )
            self._unsent.append(attempt)

    async def _send(self, attempt: AttemptRef) -> None:
        message = AttemptMessage(
            task_id=attempt.task_id,
            organization_id=attempt.organization_id,
            attempt_number=attempt.attempt_number,
            sent_by=self.executor_id,
        )
        kwargs = message.model_dump(mode="json")
        send = partial(self.app.send_task, RUN_ATTEMPT, kwargs=kwargs, queue=self.queue)
        await asyncio.get_running_loop().run_in_executor(self._sender, send)

    async def cancel(self, task_id: uuid.UUID) -> bool:
        return False  # the worker's lease keeper finds the request in the database

    async def heartbeat(self) -> None:
        """Forget attempts workers took over; give up on messages that waited too long;
        send again what the broker refused; count the attempts in flight."""
        now = time.monotonic()
        for task_id, (ref, sent_at) in list(self._waiting.items()):
            watched = self.leases.watches.get(task_id)
            taken = watched is None or watched[0] != ref or watched[1].lost.is_set()
            if taken or now - sent_at > self.wait_limit_s:
                self.leases.forget(ref)
                del self._waiting[task_id]
                if not taken:
                    log.warning("attempt.never_taken", task_id=str(ref.task_id))
        while self._unsent:
            try:
                await self._send(self._unsent[0])
            except Exception:
                break
            self._unsent.pop(0)
        if now - self._probed_at >= BROKER_PROBE_S:
            self._probed_at = now
            await self._resend_if_the_broker_restarted()
        async with self.sessionmaker() as session:
            self._counted = await DispatchRepository(session).count_live_attempts(CELERY_KIND)
        self._claimed_since = 0

    async def _resend_if_the_broker_restarted(self) -> None:
        """A broker that restarted may have lost the messages it held (Redis without
        persistence loses them all): once it answers again, send every attempt still waiting
        for a worker again. A worker finds a duplicate no longer the scheduler's to hand over
        and runs nothing, so sending twice costs a message, never a run."""
        loop = asyncio.get_running_loop()
        lost = await loop.run_in_executor(self._sender, self._probe.connection_was_lost)
        if lost is None:
            return  # out of reach: said once, probed again at the next heartbeat
        if not lost:
            return
        waiting = list(self._waiting.items())
        for task_id, (ref, _) in waiting:
            try:
                await self._send(ref)
            except Exception:
                break  # out of reach again: the next probe finds it so and resends
            self._waiting[task_id] = (ref, time.monotonic())
        else:
            log.info("broker.messages_sent_again", count=len(waiting))

    async def adopt(self) -> int:
        # A lost attempt's sandbox is on a worker host, whose own adoption measures what it
        # used: this scheduler, which has no sandbox, takes only what those left for long.
        return await adopt_orphans(
            self.sessionmaker,
            self.catalog,
            self.events,
            platform_loss_retries=self.platform_loss_retries,
            expired_for=2 * self.lease,
            notices=self.notices,
        )

    async def stop(self, grace_s: float = 10.0) -> None:
        # Attempts still waiting for a worker keep their messages: a worker takes them over
        # while their leases last, else adoption runs them again.
        await self.leases.stop()
        self._sender.submit(self._probe.close)
        self._sender.shutdown(wait=False, cancel_futures=True)
