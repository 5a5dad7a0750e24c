"""An attempt's end, written once: usage first, then a retry or the task's terminal status.

Shared by the supervisor (its own attempt, fenced by executor id) and adoption (attempts whose
supervisor died). Whether another attempt follows is `retry_follows`; on a terminal status the
task's quota reservations are closed by the one rule in `quotas.task_reservations`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.dispatch.backoff import next_run_after
from saassy.dispatch.ledger import ArtifactRepository, Metered, UsageLedger
from saassy.dispatch.repository import AttemptFinish, DispatchRepository
from saassy.metering.metrics import (
    CPU_SECONDS,
    EGRESS_BYTES,
    EGRESS_CONNECTIONS,
    EGRESS_REFUSED,
    MEMORY_GB_SECONDS,
    PEAK_MEMORY_MB,
    WALL_SECONDS,
    reserved_memory_gb_seconds,
)
from saassy.models import Artifact, AttemptStatus, Task, TaskStatus
from saassy.notifications.task_failed import TaskFailureNotices
from saassy.plans.catalog import Catalog
from saassy.quotas.task_reservations import close_task_reservations
from saassy.runtime.base import Usage
from saassy.webhooks.events import queue_task_event

log = structlog.get_logger(__name__)


class OutcomeFenced(Exception):
    """The attempt is no longer this writer's: nothing was written."""


@dataclass(frozen=True)
class AttemptOutcome:
    status: AttemptStatus
    error: str | None = None
    error_code: str | None = None
    exit_code: int | None = None
    end_reason: str | None = None
    usage: Usage | None = None
    result: Any = None
    retryable: bool = False
    sandbox_started: bool = True
    actions: dict[str, int] = field(default_factory=dict)
    units: dict[str, float] = field(default_factory=dict)
    progress: dict[str, Any] | None = None  # the program's last progress line, as stored

    def metered(self, reserved_memory_mb: int | None = None) -> list[Metered]:
        """The ledger rows; with the memory the attempt reserved, its GB-seconds too."""
        items: list[Metered] = []
        usage = self.usage
        if usage is not None:
            items += [
                Metered(CPU_SECONDS, round(usage.cpu_seconds, 6)),
                Metered(PEAK_MEMORY_MB, round(usage.peak_memory_bytes / 2**20, 3)),
                Metered(WALL_SECONDS, round(usage.wall_seconds, 6)),
            ]
            if reserved_memory_mb is not None:
                gb_seconds = reserved_memory_gb_seconds(reserved_memory_mb, usage.wall_seconds)
                items.append(Metered(MEMORY_GB_SECONDS, gb_seconds))
            if (egress := usage.egress) is not None:
                items += [
                    Metered(EGRESS_BYTES, egress.bytes_out + egress.bytes_in),
                    Metered(EGRESS_CONNECTIONS, egress.connections),
                    Metered(EGRESS_REFUSED, egress.refused),
                ]
        items += [Metered(f"action:{name}", count) for name, count in self.actions.items()]
        items += [Metered(f"units:{name}", amount) for name, amount in self.units.items()]
        return items

    def finish(self) -> AttemptFinish:
        return AttemptFinish(self.status, self.exit_code, self.end_reason, self.error, self.usage)


PLATFORM_LOSS_RETRIES = 2  # the default of the setting SAASSY_PLATFORM_LOSS_RETRIES


def platform_losses_after(task: Task, outcome: AttemptOutcome) -> int:
    """The task's attempts lost to the platform, this one included."""
    return task.platform_losses + (outcome.status is AttemptStatus.lost)


def retry_follows(
    task: Task,
    attempt_number: int,
    outcome: AttemptOutcome,
    platform_loss_retries: int = PLATFORM_LOSS_RETRIES,
) -> bool:
    """Whether the attempt's end queues another attempt of the task: the one retry rule.

    Attempts lost to the platform, up to `platform_loss_retries` of them, are not the task's
    to count: only the others use up its type's `retries`.
    """
    forgiven = min(platform_losses_after(task, outcome), platform_loss_retries)
    return outcome.retryable and attempt_number - forgiven < task.max_attempts


TERMINAL_FOR = {
    AttemptStatus.succeeded: TaskStatus.succeeded,
    AttemptStatus.failed: TaskStatus.failed,
    AttemptStatus.timed_out: TaskStatus.timed_out,
    AttemptStatus.canceled: TaskStatus.canceled,
    AttemptStatus.lost: TaskStatus.failed,
}


async def write_outcome(
    session: AsyncSession,
    catalog: Catalog,
    task: Task,
    *,
    attempt_number: int,
    executor_id: str,
    outcome: AttemptOutcome,
    now: datetime,
    artifacts: list[Artifact] | None = None,
    platform_loss_retries: int = PLATFORM_LOSS_RETRIES,
    notices: TaskFailureNotices | None = None,
) -> TaskStatus:
    """The supervisor's fenced write; OutcomeFenced if the attempt is no longer its own.

    `task` is the row as the claim (or the supervisor's load) left it: only what admission set
    (organization, type, reservations, max attempts) is read from it; its live state (status,
    attempt, cancel request) is checked by the writes themselves.
    """
    repo = DispatchRepository(session)
    # The attempt row first, then the task's: adoption locks them in that order too, and the
    # opposite order deadlocked with it on PostgreSQL when a lease ran out during the outcome.
    if not await repo.finish_attempt(task.id, attempt_number, executor_id, now, outcome.finish()):
        raise OutcomeFenced(f"task {task.id} attempt {attempt_number}")
    return await apply_outcome(
        session,
        catalog,
        task,
        attempt_number,
        outcome,
        now,
        artifacts,
        platform_loss_retries,
        notices,
    )


async def apply_outcome(
    session: AsyncSession,
    catalog: Catalog,
    task: Task,
    attempt_number: int,
    outcome: AttemptOutcome,
    now: datetime,
    artifacts: list[Artifact] | None = None,
    platform_loss_retries: int = PLATFORM_LOSS_RETRIES,
    notices: TaskFailureNotices | None = None,
) -> TaskStatus:
    """After the attempt row is closed: usage, then requeue or finish the task; with
    `notices`, a failure is e-mailed to a submitter who opted in."""
    # The attempt ran with its type's memory (attempt_setup): that is what it reserved.
    task_type = catalog.task_type(task.type)
    reserved_mb = task_type.resources.memory_mb if task_type is not None else None
    await UsageLedger(session).record(
        organization_id=task.organization_id,
        task_id=task.id,
        task_type=task.type,
        attempt_number=attempt_number,
        usage=outcome.metered(reserved_mb),
        now=now,
    )
    retry = retry_follows(task, attempt_number, outcome, platform_loss_retries)
    status = await _close_task(
        DispatchRepository(session), catalog, task, attempt_number, outcome, now, retry
    )
    if status is TaskStatus.queued:
        return status
    if artifacts:
        await ArtifactRepository(session).add_all(artifacts)
    # Nothing ran (canceled before start, type withdrawn): the customer is not charged.
    ran = outcome.sandbox_started or attempt_number > 1
    await close_task_reservations(session, task, ran=ran)
    # In the transaction of the final status: the event goes out if and only if it commits.
    await queue_task_event(session, task.id, task.organization_id, status)
    if notices is not None and status is not TaskStatus.succeeded:
        ending = _ending(status, outcome, now)
        await notices.task_ended(
            session, task, status, error_code=ending["error_code"], error=ending["error"], now=now
        )
    return status


async def _close_task(
    repo: DispatchRepository,
    catalog: Catalog,
    task: Task,
    number: int,
    outcome: AttemptOutcome,
    now: datetime,
    retry: bool,
) -> TaskStatus:
    """Requeue or finish the task as the outcome says, in one UPDATE unless a cancel came first.

    The cancel request is read by that UPDATE itself (under the row's lock), not beforehand;
    only when one arrived does a second UPDATE write the canceled ending instead.
    """
    values: dict[str, Any]
    progress = {"progress": outcome.progress} if outcome.progress is not None else {}
    lost = outcome.status is AttemptStatus.lost
    if retry:
        status = TaskStatus.queued
        values = {
            "status": status,
            # A platform loss is not the program's doing: no backoff before its re-run.
            "run_after": now if lost else next_run_after(now, catalog.task_type(task.type), number),
            "error": outcome.error,
            "error_code": outcome.error_code,
        }
    else:
        status = TERMINAL_FOR[outcome.status]
        values = _ending(status, outcome, now)
    if lost:
        values["platform_losses"] = platform_losses_after(task, outcome)
    if status is not TaskStatus.canceled and await repo.update_task(
        task.id, number, unless_canceled=True, **values, **progress
    ):
        return status
    # A cancel came first (or the attempt was fenced off, and this misses too).
    if not await repo.update_task(task.id, number, **_ending(TaskStatus.canceled, outcome, now)):
        raise OutcomeFenced(f"task {task.id} attempt {number}")
    return TaskStatus.canceled


def _ending(status: TaskStatus, outcome: AttemptOutcome, now: datetime) -> dict[str, Any]:
    if status is TaskStatus.succeeded:
        return dict(
            status=status, finished_at=now, result=outcome.result, error=None, error_code=None
        )
    return dict(
        status=status,
        finished_at=now,
        result=None,
        error=outcome.error or f"the task ended {status.value}",
        error_code=outcome.error_code or status.value,
    )
