"""`/api/v1/task-types` and `/api/v1/tasks`: what can run, submitting, following, canceling."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response, status

from saassy.auth.dependencies import (
    CurrentOrganization,
    CurrentPrincipal,
    InOrganization,
    anonymous_rate_limit,
)
from saassy.auth.scopes import READ_OR_TASKS
from saassy.deps import Session, SettingsDep
from saassy.kit.pagination import Page, PageParams, page_params
from saassy.kit.time import bound_as_utc
from saassy.models import TaskStatus
from saassy.tasks import service
from saassy.tasks.repository import TaskFilters
from saassy.tasks.schemas import TaskOut, TaskSubmit, TaskSummary, TaskTypeOut
from saassy.tasks.views import task_out, task_summary

router = APIRouter(tags=["tasks"], dependencies=[READ_OR_TASKS])


@router.get("/task-types", dependencies=[Depends(anonymous_rate_limit)])
async def list_task_types(settings: SettingsDep) -> list[TaskTypeOut]:
    """The task types customers can submit, with the JSON Schema of their input."""
    return [TaskTypeOut.of(t) for t in service.list_task_types(settings.catalog)]


@router.post("/tasks", status_code=status.HTTP_202_ACCEPTED)
async def submit_task(
    body: TaskSubmit,
    response: Response,
    call: InOrganization,  # the busiest route: one dependency, not five nested ones
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="Retry-safe submission: the same key and body answer the same task.",
        ),
    ] = None,
) -> TaskOut:
    """Queue a task of the active organization (admitted against its plan and quotas)."""
    session = call.session
    submission = await service.submit_task(
        session,
        call.ctx.settings,
        call.principal,
        call.organization,
        body,
        idempotency_key,
        program_refusal=call.ctx.program_refusal,
    )
    response.headers["Location"] = f"/api/v1/tasks/{submission.task.id}"
    if not submission.created:
        response.headers["Idempotent-Replayed"] = "true"
    return await task_out(session, submission.task, history=not submission.created)


@router.get("/tasks")
async def list_tasks(
    session: Session,
    principal: CurrentPrincipal,
    organization: CurrentOrganization,
    page: Annotated[PageParams, Depends(page_params)],
    status_: Annotated[
        list[TaskStatus] | None, Query(alias="status", description="Repeat for several.")
    ] = None,
    type_: Annotated[str | None, Query(alias="type", max_length=64)] = None,
    created_after: Annotated[datetime | None, Query(description="Inclusive, ISO 8601.")] = None,
    created_before: Annotated[datetime | None, Query(description="Exclusive, ISO 8601.")] = None,
) -> Page[TaskSummary]:
    """The active organization's tasks, newest first (inputs and results: GET one task)."""
    filters = TaskFilters(
        statuses=tuple(status_ or ()),
        type=type_,
        created_after=bound_as_utc(created_after) if created_after else None,
        created_before=bound_as_utc(created_before) if created_before else None,
    )
    rows, next_cursor = await service.list_tasks(
        session, principal.scope, organization.id, filters, page
    )
    return Page(items=[task_summary(task) for task in rows], next_cursor=next_cursor)


@router.get("/tasks/{task_id}")
async def get_task(task_id: uuid.UUID, session: Session, principal: CurrentPrincipal) -> TaskOut:
    """A task with its input, result, error, attempts, timings and usage."""
    return await task_out(session, await service.get_task(session, principal.scope, task_id))


@router.post(
    "/tasks/{task_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"description": "Canceled at once (it had not started)."}},
)
async def cancel_task(
    task_id: uuid.UUID,
    response: Response,
    session: Session,
    principal: CurrentPrincipal,
) -> TaskOut:
    """Cancel a task: a queued one at once (200); a running one is stopped by its executor (202)."""
    cancellation = await service.cancel_task(session, principal.scope, task_id)
    if not cancellation.executor_must_stop:
        response.status_code = status.HTTP_200_OK
    return await task_out(session, cancellation.task)
