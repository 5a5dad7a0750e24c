"""Closing a task's quota reservations when it ends, one rule for every way a task ends.

Whether the task ended through its outcome, a cancel while it waited in the queue, or its
organization's deletion: once any attempt ran, the monthly unit is counted and each declared
action with what every attempt reported (the ledger's `action:<name>` rows); an action never
performed, and everything of a task that never ran, is given back.
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.kit.errors import NotFound
from saassy.models import Task, UsageRecord
from saassy.quotas.periods import ACTION_PREFIX
from saassy.quotas.service import release, settle

log = structlog.get_logger(__name__)


def action_reservations(task: Task) -> dict[str, uuid.UUID]:
    """{action: reservation id} as admission recorded them on the task."""
    recorded = task.action_reservations or {}
    return {str(name): uuid.UUID(str(value)) for name, value in dict(recorded).items()}


async def performed_actions(session: AsyncSession, task_id: uuid.UUID) -> dict[str, int]:
    """Each action's count over all the task's attempts, as the usage ledger holds them."""
    statement = (
        select(UsageRecord.metric, func.sum(UsageRecord.quantity))
        .where(UsageRecord.task_id == task_id, UsageRecord.metric.startswith(ACTION_PREFIX))
        .group_by(UsageRecord.metric)
    )
    rows = await session.execute(statement)
    return {metric.removeprefix(ACTION_PREFIX): round(total) for metric, total in rows}


async def close_task_reservations(session: AsyncSession, task: Task, *, ran: bool) -> None:
    """Count what the task used against its plan, or give it all back when nothing ran."""
    actions = action_reservations(task)
    performed = await performed_actions(session, task.id) if ran and actions else {}
    closing: list[tuple[uuid.UUID | None, int | None]] = [
        (task.quota_reservation_id, None if ran else 0),  # None: the whole reservation
        *((reservation, performed.get(action, 0)) for action, reservation in actions.items()),
    ]
    for reservation_id, used in closing:
        if reservation_id is None:
            continue
        try:
            if used == 0:
                await release(session, reservation_id)
            else:
                await settle(session, reservation_id, used)
        except NotFound:
            log.warning(
                "reservation missing", task_id=str(task.id), reservation=str(reservation_id)
            )
