"""Adoption: attempts whose lease ran out lost their supervisor; re-run or end their tasks.

A lost attempt is the platform's failure, not the program's: its task runs again, up to the
platform-loss budget (`SAASSY_PLATFORM_LOSS_RETRIES`) on top of its type's retries
(`outcome.retry_follows`), and only then ends `failed` with code `lost`.

A lost attempt's sandbox can outlive its supervisor on the host it ran on (the process was
killed; its cgroup, with the CPU it burned, remains). The adopter on that host ends and measures
it inside the transaction that marks the attempt lost, once the attempt's row is locked and its
lease seen expired, so never under a live supervisor; the usage is recorded with the outcome;
the sandbox is freed only after the commit, so until then measuring again gives the same figure
and a crash in between loses nothing. Attempts of other hosts are ended without usage.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.dispatch.attempt_usage import recorded_usage
from saassy.dispatch.executor import executor_host
from saassy.dispatch.liveness import LastSeen
from saassy.dispatch.outcome import PLATFORM_LOSS_RETRIES, AttemptOutcome, apply_outcome
from saassy.dispatch.repository import DispatchRepository
from saassy.dispatch.supervisor import sandbox_name
from saassy.events.bus import EventBus, publish_status
from saassy.kit.after_commit import Reaction, act_after_commit, take_effects
from saassy.kit.time import as_utc, utcnow
from saassy.models import AttemptStatus, TaskAttempt
from saassy.notifications.task_failed import TaskFailureNotices
from saassy.observability import metrics
from saassy.plans.catalog import Catalog
from saassy.runtime.base import Runtime, Usage

log = structlog.get_logger(__name__)

BATCH = 100
LOST = "the attempt's supervisor stopped renewing its lease (process died or was stopped)"


@dataclass(frozen=True)
class RunningHere:
    """The attempts the adopting process's own supervisors run, as (task id, number) under
    its `executor_id`. Their leases may have run out (its loop stalled past a lease: a burst
    of sandbox starts on a loaded machine), but it knows they live: adopting them would kill
    and re-run them, and the next burst would stall the loop again, until their retries ran
    out. Another process, which cannot know, still takes them once their leases run out."""

    executor_id: str | None = None
    attempts: Sequence[tuple[uuid.UUID, int]] = ()


@dataclass(frozen=True)
class LeftoverSandboxes:
    """What lost attempts may have left on this host, ended and freed through its runtime."""

    runtime: Runtime
    host: str | None  # as executor ids name it (`executor_host`)
    last_seen: LastSeen | None = None  # when this host's executors were last alive

    def name_of(self, task_id: uuid.UUID, number: int, executor_id: str | None) -> str | None:
        """The attempt's sandbox if it can be on this host."""
        if self.host is None or executor_host(executor_id) != self.host:
            return None
        return sandbox_name(task_id, number)

    async def end(self, name: str, attempt: TaskAttempt) -> Usage | None:
        try:
            usage = await self.runtime.end_leftover(name)
        except Exception:  # settling the attempt matters more than its figure
            log.exception("leftover sandbox not measured", sandbox=name)
            return None
        if usage is None:
            return None
        seen = self.last_seen.of(attempt.executor_id) if self.last_seen else None
        return replace(usage, wall_seconds=lost_wall_seconds(attempt, seen))

    async def free(self, names: Iterable[str]) -> None:
        for name in names:
            try:
                await self.runtime.recover(name)
            except Exception:  # the next start's sweep frees it
                log.exception("leftover sandbox not freed", sandbox=name)

    async def still_leased(self, sessionmaker: async_sessionmaker[AsyncSession]) -> set[str]:
        """Sandboxes of this host's live attempts: adoption may still have to measure them."""
        async with sessionmaker() as session, session.begin():
            live = await DispatchRepository(session).live_attempts()
        names = (self.name_of(task_id, number, executor) for task_id, number, executor in live)
        return {name for name in names if name is not None}


def lost_wall_seconds(attempt: TaskAttempt, last_seen: datetime | None) -> float:
    """From its start to when its sandbox stopped: the moment its executor was last seen alive
    (its sandbox dies with it, bwrap --die-with-parent), else its last lease renewal; never
    past its lease's expiry."""
    if attempt.started_at is None:
        return 0.0
    ends = [as_utc(at) for at in (attempt.heartbeat_at, attempt.lease_expires_at) if at]
    stopped = as_utc(last_seen) if last_seen is not None else (ends[0] if ends else None)
    if stopped is None:
        return 0.0
    if attempt.lease_expires_at is not None:
        stopped = min(stopped, as_utc(attempt.lease_expires_at))
    return max(0.0, (stopped - as_utc(attempt.started_at)).total_seconds())


async def adopt_orphans(
    sessionmaker: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    events: EventBus,
    leftovers: LeftoverSandboxes | None = None,
    platform_loss_retries: int = PLATFORM_LOSS_RETRIES,
    expired_for: timedelta = timedelta(0),
    notices: TaskFailureNotices | None = None,
    after_commit: Reaction | None = None,
    running_here: RunningHere | None = None,
) -> int:
    """Mark expired attempts lost and re-run or fail their tasks; returns how many.

    `expired_for`: only leases that ran out that long ago, leaving the attempts' own hosts,
    which can measure their sandboxes, the first go (the Celery scheduler has none).
    `running_here`: what the calling process's own supervisors still run, never taken here."""
    here = running_here or RunningHere()
    total = 0
    while True:
        changes = []
        lost_types: list[str] = []
        ended: list[str] = []
        async with sessionmaker() as session, session.begin():
            now = utcnow()
            repo = DispatchRepository(session)
            expired = await repo.expired_attempts(
                now - expired_for, BATCH, here.executor_id, here.attempts
            )
            for attempt in expired:
                # Locked by this transaction with its lease expired: no supervisor can renew it.
                name = (
                    leftovers.name_of(attempt.task_id, attempt.number, attempt.executor_id)
                    if leftovers
                    else None
                )
                usage = await leftovers.end(name, attempt) if leftovers and name else None
                usage = usage or recorded_usage(attempt)
                if name:
                    ended.append(name)
                if not await repo.mark_lost(attempt.id, now, LOST, usage):
                    continue
                task = await repo.live_task(attempt.task_id, attempt.number)
                if task is None:
                    continue
                outcome = AttemptOutcome(
                    status=AttemptStatus.lost,
                    error=LOST,
                    error_code="lost",
                    usage=usage,
                    retryable=True,
                )
                status = await apply_outcome(
                    session,
                    catalog,
                    task,
                    attempt.number,
                    outcome,
                    now,
                    platform_loss_retries=platform_loss_retries,
                    notices=notices,
                )
                changes.append((task.organization_id, task.id, attempt.number, status))
                lost_types.append(task.type)
        # First: what follows may fail, and the messages and e-mails are committed.
        await act_after_commit(after_commit, take_effects(session))
        if leftovers:  # only now: the usage is committed
            await leftovers.free(ended)
        for task_type in lost_types:  # committed: these attempts are lost for good
            metrics.attempt_ended(task_type, AttemptStatus.lost.value, None)
        for organization_id, task_id, number, status in changes:
            await publish_status(events, organization_id, task_id, status, number)
        total += len(changes)
        if changes:
            log.warning("attempts adopted", count=len(changes))
        if len(expired) < BATCH:
            return total
