"""Firing a due schedule: each due time becomes one run, however many schedulers run.

A scheduler lists due schedules without locks, then acts on each in its own transaction: the
organization is held (FOR SHARE, the order its deletion locks them in), the schedule row locked
(PostgreSQL: SKIP LOCKED, so a second scheduler moves on), and the run inserted under the
unique key (schedule, due time) before any task is submitted: whichever scheduler loses that
insert submits nothing. The run's task is admitted like any other (plan, quotas, spend cap);
a refusal is written on the run and on the schedule, never dropped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.config import Settings
from saassy.kit.errors import SaassyError
from saassy.models import CatchUp, Organization, PauseReason, RunOutcome, Schedule, ScheduleRun
from saassy.organizations.repository import OrganizationRepository
from saassy.schedules.actors import acting_for, why_it_cannot_run
from saassy.schedules.cadence import Cadence
from saassy.schedules.repository import ScheduleRepository, ScheduleRunRepository
from saassy.schedules.service import cadence_of, record_pause_by_scheduler
from saassy.tasks.schemas import TaskSubmit
from saassy.tasks.service import ProgramRefusal, submit_task

log = structlog.get_logger(__name__)

# A due time a scheduler reaches later than this was missed (no scheduler ran then): with
# catch_up "skip" it is skipped. Schedulers look every few seconds, so on-time runs are well
# inside it.
LATE_AFTER = timedelta(seconds=30)
# A schedule's history keeps its newest runs (an every-minute schedule makes 1440 a day).
RUNS_KEPT = 1000


@dataclass(frozen=True)
class Firing:
    """What a scheduler does for a schedule due by `now`."""

    due_at: datetime  # the latest due time at or before now: the one acted on
    missed: int  # earlier due times that passed with no scheduler running
    skipped: bool  # the schedule skips missed runs, and due_at was missed too
    next_run_at: datetime


def plan_firing(
    cadence: Cadence, next_run_at: datetime, catch_up: CatchUp, now: datetime
) -> Firing:
    """Missed due times collapse into one: made up once, or skipped, never run N times."""
    latest = max(cadence.latest_at_or_before(now) or next_run_at, next_run_at)
    missed = cadence.count_between(next_run_at, latest) - 1
    late = now - latest > LATE_AFTER
    return Firing(
        due_at=latest,
        missed=missed,
        skipped=CatchUp(catch_up) is CatchUp.skip and late,
        next_run_at=cadence.next_after(max(latest, now)),
    )


async def fire_schedule(
    session: AsyncSession,
    settings: Settings,
    schedule_id: uuid.UUID,
    organization_id: uuid.UUID,
    now: datetime,
    *,
    program_refusal: ProgramRefusal,
) -> ScheduleRun | None:
    """Act on one due schedule; None when another scheduler has it, or it is no longer due."""
    organizations = OrganizationRepository(session)
    if not await organizations.hold_live(organization_id):
        return None
    organization = await organizations.get_live(organization_id)
    schedule = await ScheduleRepository(session).claim_due(schedule_id, now)
    if organization is None or schedule is None:
        return None
    reason = await why_it_cannot_run(session, schedule, now)
    if reason is not None:
        await _pause_for(session, schedule, reason, now)
        return None
    firing = plan_firing(cadence_of(schedule), schedule.next_run_at, schedule.catch_up, now)
    run = ScheduleRun(
        schedule_id=schedule.id,
        organization_id=organization.id,
        due_at=firing.due_at,
        outcome=RunOutcome.skipped,
        missed_due_times=firing.missed,
        created_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(run)
            await session.flush()
    except IntegrityError:
        # Another scheduler acted on this due time (one that read the schedule before that
        # commit, where no lock held it): nothing is submitted twice, and the schedule moves on.
        if schedule.next_run_at < firing.next_run_at:
            schedule.next_run_at = firing.next_run_at
            await session.flush()
        return None
    schedule.next_run_at = firing.next_run_at
    schedule.last_run_at = firing.due_at
    if not firing.skipped:
        await _submit(session, settings, schedule, organization, run, now, program_refusal)
    schedule.last_outcome = run.outcome
    await session.flush()
    await ScheduleRunRepository(session).prune(schedule.id, RUNS_KEPT)
    return run


async def _pause_for(
    session: AsyncSession, schedule: Schedule, reason: PauseReason, now: datetime
) -> None:
    """Its member or key may no longer submit tasks: nothing is submitted in their name, and
    the schedule waits, saying why, for someone to resume it as themselves."""
    schedule.paused = True
    schedule.paused_at = schedule.updated_at = now
    schedule.paused_reason = reason
    await record_pause_by_scheduler(session, schedule, reason)
    await session.flush()
    log.info("schedule.paused", schedule_id=str(schedule.id), reason=reason.value)


async def _submit(
    session: AsyncSession,
    settings: Settings,
    schedule: Schedule,
    organization: Organization,
    run: ScheduleRun,
    now: datetime,
    program_refusal: ProgramRefusal,
) -> None:
    principal, active = acting_for(schedule, organization)
    body = TaskSubmit(
        type=schedule.task_type,
        input=schedule.input,
        timeout_s=schedule.timeout_s,
        priority=schedule.priority,
    )
    try:
        # A savepoint: a refusal takes back whatever admission had reserved before it.
        async with session.begin_nested():
            submission = await submit_task(
                session, settings, principal, active, body, program_refusal=program_refusal
            )
    except SaassyError as refusal:
        run.outcome = RunOutcome.refused
        run.refusal_code, run.refusal_message = refusal.code, refusal.message
        schedule.last_refusal_code = refusal.code
        schedule.last_refusal_message = refusal.message
        schedule.last_refused_at = now
        return
    run.outcome = RunOutcome.queued
    run.task_id = submission.task.id
    schedule.last_task_id = submission.task.id
