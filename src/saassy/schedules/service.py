"""Creating, reading, changing, pausing and deleting schedules; firing them is in runs.py.

Any member may manage the organization's schedules, as any member may submit its tasks. The
input is checked against the task type's schema when it is set; the plan, quotas and spend cap
apply when each run is admitted, as for any task.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor, Origin
from saassy.audit.service import Detail, Target, record
from saassy.auth.principal import ActiveOrganization, Principal
from saassy.config import Settings
from saassy.kit.after_commit import after_commit
from saassy.kit.errors import NotFound, ValidationFailed
from saassy.kit.pagination import PageParams, page_of
from saassy.kit.time import utcnow
from saassy.models import PauseReason, Schedule, ScheduleRun
from saassy.organizations.repository import OrganizationRepository
from saassy.schedules.actors import why_it_cannot_run
from saassy.schedules.cadence import Cadence
from saassy.schedules.effects import ScheduleChanged
from saassy.schedules.errors import ScheduleNotFound, TooManySchedules
from saassy.schedules.repository import ScheduleRepository, ScheduleRunRepository
from saassy.schedules.schemas import ScheduleCreate, ScheduleUpdate
from saassy.tasks.admission import check_input
from saassy.tasks.errors import TimeoutTooLong, UnknownTaskType

# A bound on what one organization can make the schedulers do (plans have no key for it).
MAX_SCHEDULES_PER_ORGANIZATION = 100


# Fields a PATCH may leave out but not set to null (cron and interval_s: one replaces the other).
REQUIRED_FIELDS = frozenset({"name", "priority", "timezone", "catch_up"})


def cadence_of(schedule: Schedule) -> Cadence:
    return Cadence(schedule.cron, schedule.interval_s, schedule.timezone, schedule.anchor_at)


async def _audit(
    session: AsyncSession,
    action: AuditAction,
    actor: Actor,
    schedule: Schedule,
    **details: Detail,
) -> None:
    """The schedule's id and name identify it in the log; its input is never copied there."""
    await record(
        session,
        action,
        actor,
        organization_id=schedule.organization_id,
        target=Target(TargetType.schedule, schedule.id),
        details={"name": schedule.name[:200], **details},
    )


async def record_pause_by_scheduler(
    session: AsyncSession, schedule: Schedule, reason: PauseReason
) -> None:
    """A scheduler paused it (no one did): the entry names no actor and says why."""
    await _audit(
        session, AuditAction.schedule_paused, Actor.nobody(), schedule, reason=reason.value
    )


def check_task(settings: Settings, type_name: str, value: Any, timeout_s: int | None) -> None:
    """What can be checked once, when the schedule is written: the type, the input, the
    timeout against the type. 422 naming the field."""
    catalog = settings.catalog
    task_type = catalog.task_type(type_name)
    if task_type is None:
        raise UnknownTaskType(type_name, sorted(catalog.task_types))
    check_input(task_type, value)
    if timeout_s is not None and timeout_s > task_type.max_timeout_s:
        raise TimeoutTooLong(timeout_s, task_type.max_timeout_s, task_type.name)


async def create_schedule(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    organization: ActiveOrganization,
    body: ScheduleCreate,
    *,
    origin: Origin,
) -> Schedule:
    """A new schedule of the active organization; its first run is its next due time."""
    now = utcnow()
    cadence = Cadence.checked(body.cron, body.interval_s, body.timezone, now)
    check_task(settings, body.type, body.input, body.timeout_s)
    # Locked FOR UPDATE, as other per-organization limits are: creations at once count one
    # after another, so the limit is exact; and an organization deleted since authentication
    # gets no schedule its deletion missed.
    if await OrganizationRepository(session).get_live(organization.id, lock=True) is None:
        raise NotFound("Organization")
    schedules = ScheduleRepository(session)
    if await schedules.count_of(organization.id) >= MAX_SCHEDULES_PER_ORGANIZATION:
        raise TooManySchedules(MAX_SCHEDULES_PER_ORGANIZATION)
    schedule = await schedules.add(
        Schedule(
            organization_id=organization.id,
            name=body.name,
            task_type=body.type,
            input=body.input,
            priority=body.priority,
            timeout_s=body.timeout_s,
            cron=cadence.cron,
            interval_s=cadence.interval_s,
            timezone=cadence.timezone,
            anchor_at=cadence.anchor,
            catch_up=body.catch_up,
            paused=body.paused,
            paused_at=now if body.paused else None,
            next_run_at=cadence.next_after(now),
            run_as_user_id=principal.user_id,
            run_as_api_key_id=principal.api_key_id,
            created_at=now,
            updated_at=now,
        )
    )
    await _audit(
        session,
        AuditAction.schedule_created,
        Actor.of(principal, origin),
        schedule,
        type=schedule.task_type,
        paused=schedule.paused,
    )
    after_commit(session, ScheduleChanged(schedule.id))
    return schedule


async def get_schedule(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, schedule_id: uuid.UUID
) -> Schedule:
    """A schedule of the active organization; any other id is a 404."""
    schedule = await ScheduleRepository(session).get_of(
        schedule_id, organization_id, principal.scope
    )
    if schedule is None:
        raise ScheduleNotFound()
    return schedule


async def list_schedules(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, params: PageParams
) -> tuple[list[Schedule], str | None]:
    """The organization's schedules, oldest first."""
    rows = await ScheduleRepository(session).list_of(organization_id, principal.scope, params)
    return page_of(rows, params, lambda schedule: (schedule.created_at, schedule.id))


async def _locked(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, schedule_id: uuid.UUID
) -> Schedule:
    # Locked: a scheduler firing it waits (or skips it), so it never fires a half-changed one.
    schedule = await ScheduleRepository(session).get_of(
        schedule_id, organization_id, principal.scope, lock=True
    )
    if schedule is None:
        raise ScheduleNotFound()
    return schedule


async def update_schedule(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    organization_id: uuid.UUID,
    schedule_id: uuid.UUID,
    body: ScheduleUpdate,
    *,
    origin: Origin,
) -> Schedule:
    """Change what the schedule runs or when; a new cadence counts from now."""
    schedule = await _locked(session, principal, organization_id, schedule_id)
    given = body.model_fields_set
    for name in sorted(given & REQUIRED_FIELDS):
        if getattr(body, name) is None:
            raise ValidationFailed(f"{name}: may not be null; leave it out to keep it.", field=name)
    now = utcnow()
    if given & {"input", "timeout_s"}:
        value = body.input if "input" in given else schedule.input
        timeout_s = body.timeout_s if "timeout_s" in given else schedule.timeout_s
        check_task(settings, schedule.task_type, value, timeout_s)
        schedule.input, schedule.timeout_s = value, timeout_s
    if given & {"cron", "interval_s", "timezone"}:
        cron, interval_s = schedule.cron, schedule.interval_s
        if given & {"cron", "interval_s"}:
            cron = body.cron if "cron" in given else None
            interval_s = body.interval_s if "interval_s" in given else None
        timezone = body.timezone if body.timezone is not None else schedule.timezone
        cadence = Cadence.checked(cron, interval_s, timezone, now)
        schedule.cron, schedule.interval_s = cadence.cron, cadence.interval_s
        schedule.timezone, schedule.anchor_at = cadence.timezone, cadence.anchor
        schedule.next_run_at = cadence.next_after(now)
    if body.name is not None:
        schedule.name = body.name
    if body.priority is not None:
        schedule.priority = body.priority
    if body.catch_up is not None:
        schedule.catch_up = body.catch_up
    schedule.updated_at = now
    if given:
        await _audit(
            session,
            AuditAction.schedule_updated,
            Actor.of(principal, origin),
            schedule,
            changed=sorted(given),
        )
    await session.flush()
    after_commit(session, ScheduleChanged(schedule.id))
    return schedule


async def set_paused(
    session: AsyncSession,
    principal: Principal,
    organization_id: uuid.UUID,
    schedule_id: uuid.UUID,
    paused: bool,
    *,
    origin: Origin,
) -> Schedule:
    """Pause, or resume from the next due time after now: due times while it was paused are
    not runs to make up. Resuming a schedule whose member or key may no longer submit tasks
    (the reason a scheduler paused it) makes the caller the one it runs as."""
    schedule = await _locked(session, principal, organization_id, schedule_id)
    if schedule.paused == paused:
        return schedule
    now = utcnow()
    actor = Actor.of(principal, origin)
    schedule.paused = paused
    schedule.paused_reason = None
    schedule.updated_at = now
    if paused:
        schedule.paused_at = now
        await _audit(session, AuditAction.schedule_paused, actor, schedule)
    else:
        schedule.paused_at = None
        schedule.next_run_at = cadence_of(schedule).next_after(now)
        took_over = await why_it_cannot_run(session, schedule, now) is not None
        if took_over:
            schedule.run_as_user_id = principal.user_id
            schedule.run_as_api_key_id = principal.api_key_id
        await _audit(session, AuditAction.schedule_resumed, actor, schedule, took_over=took_over)
    await session.flush()
    after_commit(session, ScheduleChanged(schedule.id))
    return schedule


async def delete_schedule(
    session: AsyncSession,
    principal: Principal,
    organization_id: uuid.UUID,
    schedule_id: uuid.UUID,
    *,
    origin: Origin,
) -> None:
    """Delete a schedule and its history; the tasks it queued stay."""
    schedule = await _locked(session, principal, organization_id, schedule_id)
    await _audit(session, AuditAction.schedule_deleted, Actor.of(principal, origin), schedule)
    await ScheduleRepository(session).delete(schedule)


async def list_runs(
    session: AsyncSession,
    principal: Principal,
    organization_id: uuid.UUID,
    schedule_id: uuid.UUID,
    params: PageParams,
) -> tuple[list[ScheduleRun], str | None]:
    """What the schedulers did at each due time of the schedule, newest first."""
    schedule = await get_schedule(session, principal, organization_id, schedule_id)
    rows = await ScheduleRunRepository(session).history(schedule.id, params)
    return page_of(rows, params, lambda run: (run.created_at, run.id))


def next_runs(schedule: Schedule, count: int) -> list[datetime]:
    """The schedule's next due times (none while paused); the first may be just past, as a
    scheduler acts on a due time within seconds."""
    if schedule.paused:
        return []
    upcoming = cadence_of(schedule).upcoming(schedule.next_run_at, count - 1)
    return [schedule.next_run_at, *upcoming]


async def delete_organization_schedules(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """The organization is being deleted: none of its schedules may fire again."""
    await ScheduleRepository(session).delete_of_organization(organization_id)
