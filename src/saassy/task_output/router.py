"""Task logs, artifacts and live events: `/api/v1/tasks/{id}/logs|artifacts`, `/api/v1/events`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from saassy.auth.dependencies import CurrentOrganization, CurrentPrincipal, still_allowed_in
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import Context, Session
from saassy.dispatch.engine import TaskEngine
from saassy.events.bus import EventBus
from saassy.kit.errors import NotFound, SaassyError
from saassy.kit.pagination import Page, PageParams, page_of, page_params
from saassy.models import Task
from saassy.task_output.downloads import artifact_download
from saassy.task_output.repository import TaskOutputRepository
from saassy.task_output.schemas import ArtifactOut
from saassy.task_output.streams import follow_logs, organization_events

router = APIRouter(tags=["tasks"], dependencies=[READ_OR_ADMIN])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class EngineUnavailable(SaassyError):
    status_code = 503
    code = "engine_unavailable"


def task_engine(ctx: Context) -> TaskEngine:
    engine = ctx.task_engine
    if engine is None:
        raise EngineUnavailable("The task engine is not running in this process.")
    return engine


def live_events(ctx: Context) -> EventBus:
    """Where live events arrive here: refused where none ever would (no engine in this
    process and no bus shared with the processes that run tasks)."""
    events = ctx.live_events()
    if events is None:
        raise EngineUnavailable(
            "Live events need the task engine in this process or SAASSY_REDIS_URL."
        )
    return events


async def _task(session: Session, principal: CurrentPrincipal, task_id: uuid.UUID) -> Task:
    task = await TaskOutputRepository(session).task(principal.scope, task_id)
    if task is None:
        raise NotFound("Task")
    return task


@router.get(
    "/tasks/{task_id}/logs",
    response_class=PlainTextResponse,
    response_model=None,
    responses={200: {"content": {"text/plain": {}, "text/event-stream": {}}}},
)
async def task_logs(
    task_id: uuid.UUID,
    session: Session,
    ctx: Context,
    principal: CurrentPrincipal,
    attempt: Annotated[int | None, Query(ge=1)] = None,
    accept: Annotated[str, Header()] = "text/plain",
) -> PlainTextResponse | StreamingResponse:
    """The task's stdout and stderr; with `Accept: text/event-stream`, follow until it ends."""
    task = await _task(session, principal, task_id)
    if "text/event-stream" in accept:
        events = live_events(ctx)
        organization_id = task.organization_id

        async def still_allowed() -> bool:  # the key revoked, the organization deleted, ...
            async with ctx.sessionmaker() as check:
                return await still_allowed_in(check, principal, organization_id)

        stream = follow_logs(
            ctx.sessionmaker, events, organization_id, task.id, still_allowed=still_allowed
        )
        return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
    chunks = await TaskOutputRepository(session).log_chunks(task.id, attempt=attempt)
    several = len({chunk.attempt_number for chunk in chunks}) > 1
    parts: list[str] = []
    current = 0
    for chunk in chunks:
        if several and chunk.attempt_number != current:
            current = chunk.attempt_number
            parts.append(f"[saassy] attempt {current}\n")
        parts.append(chunk.data)
    return PlainTextResponse("".join(parts))


@router.get("/tasks/{task_id}/artifacts")
async def list_artifacts(
    task_id: uuid.UUID,
    session: Session,
    principal: CurrentPrincipal,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ArtifactOut]:
    """The files the task's final attempt left in its output dir, in the order stored."""
    task = await _task(session, principal, task_id)
    rows = await TaskOutputRepository(session).artifacts(task.id, page)
    items, next_cursor = page_of(rows, page, lambda artifact: (artifact.created_at, artifact.id))
    return Page(items=[ArtifactOut.model_validate(a) for a in items], next_cursor=next_cursor)


@router.get(
    "/tasks/{task_id}/artifacts/{artifact_id}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        307: {"description": "With S3 storage: the artifact at a presigned URL, for minutes."},
    },
)
async def download_artifact(
    task_id: uuid.UUID,
    artifact_id: uuid.UUID,
    request: Request,
    session: Session,
    principal: CurrentPrincipal,
) -> Response:
    """Download one artifact (with S3 storage, a redirect to a short-lived presigned URL)."""
    task = await _task(session, principal, task_id)
    artifact = await TaskOutputRepository(session).artifact(task.id, artifact_id)
    if artifact is None:
        raise NotFound("Artifact")
    return await artifact_download(request.app.state.ctx.storage, artifact)


@router.get("/events", responses={200: {"content": {"text/event-stream": {}}}})
async def events(
    ctx: Context, principal: CurrentPrincipal, organization: CurrentOrganization
) -> StreamingResponse:
    """Server-sent events: status changes of the active organization's tasks."""
    bus = live_events(ctx)
    organization_id = organization.id

    async def still_allowed() -> bool:  # the key revoked, the member removed, ...
        async with ctx.sessionmaker() as check:
            return await still_allowed_in(check, principal, organization_id)

    stream = organization_events(bus, organization_id, still_allowed=still_allowed)
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)
