"""The local executor: each attempt's supervisor as an asyncio task in this process."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable

import structlog

from saassy.dispatch.adoption import LeftoverSandboxes, RunningHere, adopt_orphans
from saassy.dispatch.executor import AttemptRef, Executor, executor_host
from saassy.dispatch.lease import LeaseKeeper
from saassy.dispatch.liveness import LastSeen
from saassy.dispatch.supervisor import AttemptSupervisor, EngineServices
from saassy.models import Task

log = structlog.get_logger(__name__)
SHUTDOWN_KILL_WAIT_S = 5.0
LAST_SEEN_DIR = ".executors"  # under the supervisors' work root; no attempt's dir starts with "."


def local_executor_id() -> str:
    """Unique per process: a restarted process never mistakes a dead one's leases for its own."""
    return f"local:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LocalExecutor(Executor):
    starts_on_claim = True

    def __init__(
        self,
        deps: EngineServices,
        *,
        parallelism: int = 16,
        reserved_slots: int = 0,
        executor_id: str | None = None,
        on_free: Callable[[], None] | None = None,
        cancel_poll_s: float = 0.5,
    ) -> None:
        self.deps = deps
        self.parallelism = parallelism
        self.reserved_slots = reserved_slots
        self.executor_id = executor_id or local_executor_id()
        self._on_free = on_free
        # Every supervisor still running, by (task id, attempt number); those past their outcome
        # and only cleaning up (sandbox teardown, work dir removal) are also in `_settled`.
        self._running: dict[tuple[uuid.UUID, int], asyncio.Task[object]] = {}
        self._past_outcome: set[tuple[uuid.UUID, int]] = set()
        self._stopping = False
        # Sandboxes run here: adoption ends and measures what dead processes of this host left,
        # and bills them up to when their process was last seen alive.
        self.last_seen = LastSeen(deps.work_root / LAST_SEEN_DIR)
        self.leftovers = LeftoverSandboxes(
            deps.runtime, executor_host(self.executor_id), self.last_seen
        )
        self.leases = LeaseKeeper(
            deps.sessionmaker,
            self.executor_id,
            lease=deps.lease,
            poll_s=cancel_poll_s,
            last_seen=self.last_seen,
        )

    @property
    def active(self) -> int:
        # A slot frees when its outcome is committed, not after the clean-up; but clean-ups
        # beyond `parallelism` count again, so a slow one cannot pile up without bound.
        cleaning = len(self._past_outcome)
        return len(self._running) - cleaning + max(0, cleaning - self.parallelism)

    async def start(self) -> None:
        self._stopping = False
        await asyncio.to_thread(self.last_seen.forget_old)
        await self.adopt()
        self.leases.start()

    async def submit(self, attempt: AttemptRef, task: Task | None = None) -> None:
        if self._stopping:
            raise RuntimeError("the executor is stopping")
        if attempt.executor_id != self.executor_id:
            raise ValueError("the attempt was claimed for another executor")
        key = (attempt.task_id, attempt.attempt_number)
        watch = self.leases.watch(attempt)
        try:
            supervisor = AttemptSupervisor(
                self.deps,
                attempt,
                watch,
                task=task,
                on_outcome=lambda: self._outcome_written(attempt),
            ).run()
        except BaseException:  # never a watch (and a renewed lease) without its supervisor
            self.leases.forget(attempt)
            raise
        running: asyncio.Task[object] = asyncio.create_task(
            supervisor, name=f"attempt {attempt.task_id}"
        )
        self._running[key] = running
        running.add_done_callback(lambda done: self._finished(attempt, done))

    def supervising(self, attempt: AttemptRef) -> asyncio.Task[object] | None:
        """The attempt's supervisor while it runs here (a Celery worker waits for its end)."""
        return self._running.get((attempt.task_id, attempt.attempt_number))

    def _outcome_written(self, attempt: AttemptRef) -> None:
        key = (attempt.task_id, attempt.attempt_number)
        if key in self._running and key not in self._past_outcome:
            self._past_outcome.add(key)
            self.leases.forget(attempt)
            if self._on_free is not None:
                self._on_free()

    def _finished(self, attempt: AttemptRef, done: asyncio.Task[object]) -> None:
        key = (attempt.task_id, attempt.attempt_number)
        # Its slot freed with its outcome, unless clean-ups were piling up beyond `parallelism`
        # (see `active`): a second wake-up here would buy a round with nothing to fill.
        before = self.active
        self.leases.forget(attempt)
        if self._running.get(key) is done:
            del self._running[key]
        self._past_outcome.discard(key)
        if not done.cancelled() and done.exception() is not None:
            log.error("supervisor crashed", task_id=str(attempt.task_id), exc_info=done.exception())
        if self._on_free is not None and self.active < before:
            self._on_free()

    async def cancel(self, task_id: uuid.UUID) -> bool:
        watched = self.leases.watches.get(task_id)
        if watched is None:
            return False
        watched[1].cancel.set()
        return True

    async def heartbeat(self) -> None:
        # The lease keeper renews and watches on its own tick; finished supervisors are
        # forgotten by their done-callbacks. Nothing left to sync here.
        return None

    async def adopt(self) -> int:
        deps = self.deps
        return await adopt_orphans(
            deps.sessionmaker,
            deps.catalog,
            deps.events,
            self.leftovers,
            platform_loss_retries=deps.platform_loss_retries,
            notices=deps.notices,
            after_commit=deps.after_commit,
            running_here=RunningHere(self.executor_id, self.leases.kept()),
        )

    async def sandboxes_to_recover(self) -> set[str]:
        return await self.leftovers.still_leased(self.deps.sessionmaker)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Let running attempts finish for `grace_s`, then kill their sandboxes and hand back."""
        self._stopping = True
        tasks = list(self._running.values())
        if not tasks:
            await self.leases.stop()
            self.last_seen.forget(self.executor_id)
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            # Bounded: a supervisor stuck in its clean-up must not hang the shutdown; its lease
            # expires and the next start adopts the attempt, as after a crash.
            _, stuck = await asyncio.wait(pending, timeout=SHUTDOWN_KILL_WAIT_S)
            if stuck:
                log.warning("executor.stop: supervisors still cleaning up", count=len(stuck))
        await self.leases.stop()
        # Every attempt was handed back with what its sandbox used: nothing needs the stamp.
        self.last_seen.forget(self.executor_id)
