"""`/api/v1/schedules`: the active organization's schedules (`Saassy-Organization` picks it),
their pausing and their run history."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from saassy.auth.dependencies import CurrentOrganization, CurrentPrincipal
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import RequestOrigin, Session, SettingsDep
from saassy.kit.pagination import Page, PageParams, page_params
from saassy.models import Schedule
from saassy.schedules import service
from saassy.schedules.actors import pause_message
from saassy.schedules.schemas import (
    NEXT_RUNS_SHOWN,
    PausedReason,
    Refusal,
    RunAs,
    ScheduleCreate,
    ScheduleOut,
    ScheduleRunOut,
    ScheduleUpdate,
)

router = APIRouter(prefix="/schedules", tags=["schedules"], dependencies=[READ_OR_ADMIN])


def schedule_out(schedule: Schedule) -> ScheduleOut:
    refusal = None
    if schedule.last_refusal_code is not None and schedule.last_refused_at is not None:
        refusal = Refusal(
            code=schedule.last_refusal_code,
            message=schedule.last_refusal_message or "",
            at=schedule.last_refused_at,
        )
    message = pause_message(schedule)
    return ScheduleOut(
        id=schedule.id,
        organization_id=schedule.organization_id,
        name=schedule.name,
        type=schedule.task_type,
        input=schedule.input,
        timeout_s=schedule.timeout_s,
        priority=schedule.priority,
        cron=schedule.cron,
        interval_s=schedule.interval_s,
        timezone=schedule.timezone,
        catch_up=schedule.catch_up,
        paused=schedule.paused,
        paused_at=schedule.paused_at,
        paused_reason=(
            PausedReason(code=schedule.paused_reason, message=message)
            if schedule.paused_reason is not None and message is not None
            else None
        ),
        run_as=RunAs(user_id=schedule.run_as_user_id, api_key_id=schedule.run_as_api_key_id),
        next_runs=service.next_runs(schedule, NEXT_RUNS_SHOWN),
        last_run_at=schedule.last_run_at,
        last_outcome=schedule.last_outcome,
        last_task_id=schedule.last_task_id,
        last_refusal=refusal,
        created_at=schedule.created_at,
        updated_at=schedule.updated_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_schedule(
    body: ScheduleCreate,
    response: Response,
    session: Session,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    organization: CurrentOrganization,
    origin: RequestOrigin,
) -> ScheduleOut:
    """Run a task type with a fixed input on a cron expression or an interval."""
    schedule = await service.create_schedule(
        session, settings, principal, organization, body, origin=origin
    )
    response.headers["Location"] = f"/api/v1/schedules/{schedule.id}"
    return schedule_out(schedule)


@router.get("")
async def list_schedules(
    session: Session,
    principal: CurrentPrincipal,
    organization: CurrentOrganization,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ScheduleOut]:
    """The active organization's schedules, oldest first, with their next due times."""
    rows, next_cursor = await service.list_schedules(session, principal, organization.id, page)
    return Page(items=[schedule_out(row) for row in rows], next_cursor=next_cursor)


@router.get("/{schedule_id}")
async def get_schedule(
    schedule_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    organization: CurrentOrganization,
) -> ScheduleOut:
    """One schedule, with its next due times and its last refusal."""
    return schedule_out(
        await service.get_schedule(session, principal, organization.id, schedule_id)
    )


@router.patch("/{schedule_id}")
async def update_schedule(
    schedule_id: uuid.UUID,
    body: ScheduleUpdate,
    session: Session,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    organization: CurrentOrganization,
    origin: RequestOrigin,
) -> ScheduleOut:
    """Change the fields given; a new cron, interval or time zone counts from now."""
    schedule = await service.update_schedule(
        session, settings, principal, organization.id, schedule_id, body, origin=origin
    )
    return schedule_out(schedule)


@router.post("/{schedule_id}/pause")
async def pause_schedule(
    schedule_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    organization: CurrentOrganization,
    origin: RequestOrigin,
) -> ScheduleOut:
    """Stop firing it until it is resumed (pausing a paused schedule changes nothing)."""
    schedule = await service.set_paused(
        session, principal, organization.id, schedule_id, True, origin=origin
    )
    return schedule_out(schedule)


@router.post("/{schedule_id}/resume")
async def resume_schedule(
    schedule_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    organization: CurrentOrganization,
    origin: RequestOrigin,
) -> ScheduleOut:
    """Fire it again from its next due time after now; none is made up for the pause. A
    schedule paused because its member or key may no longer submit tasks runs as you."""
    schedule = await service.set_paused(
        session, principal, organization.id, schedule_id, False, origin=origin
    )
    return schedule_out(schedule)


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(
    schedule_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    organization: CurrentOrganization,
    origin: RequestOrigin,
) -> Response:
    """Delete a schedule and its run history; the tasks it queued stay."""
    await service.delete_schedule(session, principal, organization.id, schedule_id, origin=origin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{schedule_id}/runs")
async def list_runs(
    schedule_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    organization: CurrentOrganization,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ScheduleRunOut]:
    """What the schedulers did at each due time, newest first: queued (with the task),
    refused by admission (with the code), or skipped."""
    rows, next_cursor = await service.list_runs(
        session, principal, organization.id, schedule_id, page
    )
    return Page(items=[ScheduleRunOut.model_validate(row) for row in rows], next_cursor=next_cursor)
