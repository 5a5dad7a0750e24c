"""Tasks as the API shows them: attempts with their usage, and the task's usage in total.

An attempt's measured figures come from its own columns; where a supervisor recorded them only
in the usage ledger (metrics `cpu_seconds`, `wall_seconds`, `peak_memory_mb`), from there.
Other ledger metrics (actions, custom units) are summed into `usage.metered`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.metering.metrics import MEMORY_GB_SECONDS
from saassy.models import Task, TaskAttempt
from saassy.tasks.repository import TaskRepository
from saassy.tasks.schemas import (
    AttemptOut,
    AttemptUsage,
    Progress,
    TaskOut,
    TaskSummary,
    Usage,
)

MEASURED = ("cpu_seconds", "wall_seconds", "peak_memory_mb")
MB = 1024 * 1024


def task_summary(task: Task) -> TaskSummary:
    return TaskSummary(
        id=task.id,
        type=task.type,
        status=task.status,
        priority=task.priority,
        timeout_s=task.timeout_s,
        attempt_count=task.attempt_count,
        max_attempts=task.max_attempts,
        platform_losses=task.platform_losses,
        error_code=task.error_code,
        created_at=task.created_at,
        run_after=task.run_after,
        started_at=task.started_at,
        finished_at=task.finished_at,
        cancel_requested_at=task.cancel_requested_at,
        progress=Progress.model_validate(task.progress) if task.progress else None,
    )


async def task_out(session: AsyncSession, task: Task, *, history: bool = True) -> TaskOut:
    """The task with its attempts and usage (`history=False`: a new task has none yet)."""
    tasks = TaskRepository(session)
    attempts = await tasks.attempts_of(task.id) if history else []
    ledger = await tasks.usage_of(task.id) if history else []
    return build_task_out(task, attempts, ledger)


def build_task_out(
    task: Task, attempts: Sequence[TaskAttempt], ledger: Sequence[tuple[int, str, float]]
) -> TaskOut:
    recorded: dict[tuple[int, str], float] = {}
    metered: dict[str, float] = {}
    for number, metric, quantity in ledger:
        if metric in MEASURED:
            recorded[(number, metric)] = quantity
        elif metric != MEMORY_GB_SECONDS:  # the platform's reservation, not a measurement
            metered[metric] = metered.get(metric, 0.0) + quantity
    shown = [_attempt_out(attempt, recorded) for attempt in attempts]
    usage = Usage(
        cpu_seconds=sum(a.usage.cpu_seconds or 0.0 for a in shown),
        wall_seconds=sum(a.usage.wall_seconds or 0.0 for a in shown),
        # Attempts run one after another: the task's peak is the largest attempt's.
        peak_memory_mb=max((a.usage.peak_memory_mb or 0.0 for a in shown), default=0.0),
        metered=metered,
    )
    return TaskOut(
        **task_summary(task).model_dump(),
        input=task.input,
        result=task.result,
        error=task.error,
        attempts=shown,
        usage=usage,
    )


def _attempt_out(attempt: TaskAttempt, recorded: dict[tuple[int, str], float]) -> AttemptOut:
    def measured(value: float | None, metric: str) -> float | None:
        return value if value is not None else recorded.get((attempt.number, metric))

    peak_mb = measured(
        None if attempt.peak_memory_bytes is None else round(attempt.peak_memory_bytes / MB, 3),
        "peak_memory_mb",
    )
    return AttemptOut(
        number=attempt.number,
        status=attempt.status,
        exit_code=attempt.exit_code,
        end_reason=attempt.end_reason,
        error=attempt.error,
        started_at=attempt.started_at,
        finished_at=attempt.finished_at,
        usage=AttemptUsage(
            cpu_seconds=measured(attempt.cpu_seconds, "cpu_seconds"),
            wall_seconds=measured(attempt.wall_seconds, "wall_seconds"),
            peak_memory_mb=peak_mb,
        ),
    )
