"""One task's page: header and actions, the attempts' timeline, logs, result, artifacts, usage
and input; live through server-sent events; cancel, re-run and downloads."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from saassy.accounts.browser_sessions import live_browser_session
from saassy.auth.dependencies import still_allowed_in
from saassy.deps import Context, Session, SettingsDep, app_context
from saassy.kit.errors import NotFound, QuotaExceeded, SaassyError
from saassy.kit.pagination import PageParams, decode_cursor, page_of
from saassy.kit.time import utcnow
from saassy.metering.metrics import MEMORY_GB_SECONDS, compute_units, rounded
from saassy.models import Task, TaskLogChunk, TaskStatus
from saassy.plans.catalog import Catalog, Plan
from saassy.task_output.downloads import artifact_download, content_disposition
from saassy.task_output.repository import TaskOutputRepository
from saassy.task_output.router import SSE_HEADERS, live_events
from saassy.task_output.streams import follow_logs, parse_log_event_id
from saassy.tasks import service
from saassy.tasks.errors import TaskFinished
from saassy.tasks.repository import TaskRepository
from saassy.tasks.views import build_task_out
from saassy.web.caller import Caller, DashboardCaller
from saassy.web.cookies import SESSION_COOKIE
from saassy.web.pages.task_messages import quota_message
from saassy.web.pages.task_new import plan_of, undo_writes
from saassy.web.pages.task_timeline import build_timeline
from saassy.web.pages.tasks import rerun_body
from saassy.web.templating import redirect, render

router = APIRouter()

LOG_LINES_SHOWN = 5000
ARTIFACTS_PER_PAGE = 25


@dataclass(frozen=True)
class LogLine:
    attempt: int
    seq: int
    stream: str
    text: str


def log_lines(chunks: list[TaskLogChunk]) -> list[LogLine]:
    """Chunks as numbered lines: a chunk holds one line or several (a program writing to a
    pipe flushes in blocks), or a piece of a long one."""
    return [
        LogLine(c.attempt_number, c.seq, c.stream, text)
        for c in chunks
        for text in c.data.removesuffix("\n").split("\n")
    ]


@dataclass(frozen=True)
class InputItem:
    name: str
    text: str  # a string as it is (code keeps its lines), anything else as indented JSON
    is_text: bool


def input_items(value: Any) -> list[InputItem] | None:
    """A top-level object's properties one by one; None: show the whole input as JSON."""
    if not isinstance(value, dict) or not value:
        return None
    return [
        InputItem(name, item, True)
        if isinstance(item, str)
        else InputItem(name, json.dumps(item, indent=2, ensure_ascii=False), False)
        for name, item in value.items()
    ]


async def _task(session: Session, caller: DashboardCaller, task_id: str) -> Task:
    """The task if the caller's organizations hold it; any other id (or no id) is a 404."""
    try:
        parsed = uuid.UUID(task_id)
    except ValueError:
        raise NotFound("Task") from None
    return await service.get_task(session, caller.principal.scope, parsed)


def quota_note(task: Task, plan: Plan, actions: list[str]) -> str:
    """What the task counted against the plan (plans have a monthly price, no per-unit ones)."""
    status = TaskStatus(task.status)
    if status is TaskStatus.canceled and task.attempt_count == 0:
        return "It was canceled before it ran, so it did not count against your quota."
    if plan.tasks_per_month is None:
        counted = f"It counted as one task; the {plan.name} plan has no monthly task limit"
    else:
        counted = (
            f"It counted as one of the {plan.tasks_per_month:,} tasks a month the "
            f"{plan.name} plan includes"
        )
    if plan.price_usd_month is not None:
        counted += f" (${plan.price_usd_month:,}/month)"
    counted += "; the plan has no per-unit prices, so it cost nothing beyond that."
    if actions:
        counted += " It also used one of the plan's daily " + ", ".join(actions) + " actions."
    return counted


async def _detail_context(
    request: Request, session: Session, caller: DashboardCaller, task: Task, catalog: Catalog
) -> dict[str, Any]:
    tasks = TaskRepository(session)
    output = TaskOutputRepository(session)
    attempts = list(await tasks.attempts_of(task.id))
    ledger = list(await tasks.usage_of(task.id))
    shown = build_task_out(task, attempts, ledger)
    chunks = list(await output.log_chunks(task.id, limit=LOG_LINES_SHOWN + 1))
    more_log = len(chunks) > LOG_LINES_SHOWN
    lines = log_lines(chunks[:LOG_LINES_SHOWN])
    truncated = any(line.stream == "system" and "log truncated" in line.text for line in lines)
    cursor = request.query_params.get("artifacts")
    try:
        after = decode_cursor(cursor) if cursor else None
    except SaassyError:
        after = None
    params = PageParams(limit=ARTIFACTS_PER_PAGE, after=after)
    artifacts, next_artifacts = page_of(
        await output.artifacts(task.id, params), params, lambda a: (a.created_at, a.id)
    )
    gb_seconds = sum(q for _, metric, q in ledger if metric == MEMORY_GB_SECONDS)
    task_type = catalog.task_type(task.type)
    plan = plan_of(catalog, caller)
    status = TaskStatus(task.status)
    return {
        "task": task,
        "out": shown,
        "status": status,
        "finished": status.terminal,
        "timeline": build_timeline(task, attempts, utcnow()),
        "log": lines,
        "log_more": more_log,
        "log_truncated": truncated,
        "last_event_id": f"{lines[-1].attempt}-{lines[-1].seq}" if lines else "",
        "artifacts": artifacts,
        "next_artifacts": next_artifacts,
        "artifacts_cursor": cursor or "",
        "compute_units": f"{rounded('compute_units', compute_units(gb_seconds)):.6f}"
        if gb_seconds
        else None,
        "metered": sorted(shown.usage.metered.items()),
        "quota_note": quota_note(task, plan, list(task_type.actions) if task_type else []),
        "task_type": task_type,
        "input_json": json.dumps(task.input, indent=2, ensure_ascii=False),
        "input_items": input_items(task.input),
        "result_json": None
        if task.result is None
        else json.dumps(task.result, indent=2, ensure_ascii=False),
    }


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_detail(
    task_id: str, request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    """Everything about one task; refreshes itself while it has not ended."""
    task = await _task(session, caller, task_id)
    context = await _detail_context(request, session, caller, task, settings.catalog)
    return render(request, "app/tasks/detail.html", context)


@router.post("/tasks/{task_id}/cancel")
async def cancel(task_id: str, request: Request, caller: Caller, session: Session) -> Response:
    """Cancel a queued task at once, or ask the executor to stop a running one."""
    task = await _task(session, caller, task_id)
    url = f"/app/tasks/{task.id}"
    try:
        cancellation = await service.cancel_task(session, caller.principal.scope, task.id)
    except TaskFinished as exc:
        return redirect(request, url, message=exc.message, kind="error")
    if cancellation.executor_must_stop:
        return redirect(request, url, message="Stopping the task; it ends as canceled shortly.")
    return redirect(request, url, message="Task canceled.")


@router.post("/tasks/{task_id}/rerun")
async def rerun(
    task_id: str, request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    """Submit a new task with the same type, input, priority and timeout."""
    task = await _task(session, caller, task_id)
    try:
        submission = await service.submit_task(
            session,
            settings,
            caller.principal,
            caller.organization,
            rerun_body(task),
            program_refusal=app_context(request).program_refusal,
        )
    except QuotaExceeded as exc:
        await undo_writes(session)
        return redirect(request, f"/app/tasks/{task.id}", message=quota_message(exc), kind="error")
    except SaassyError as exc:
        await undo_writes(session)
        return redirect(request, f"/app/tasks/{task.id}", message=exc.message, kind="error")
    new = submission.task
    return redirect(
        request, f"/app/tasks/{new.id}", message=f"Re-run of task {str(task.id)[:8]} queued."
    )


@router.get("/tasks/{task_id}/events")
async def task_events(
    request: Request,
    task_id: str,
    caller: Caller,
    session: Session,
    ctx: Context,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[str | None, Query(max_length=40)] = None,
) -> StreamingResponse:
    """The page's live feed: log lines past Last-Event-ID (a reconnection) or `?after=` (the
    lines the page already shows), status changes, then `end`."""
    task = await _task(session, caller, task_id)
    events = live_events(ctx)
    organization_id, user_id = task.organization_id, caller.user.id
    token = request.cookies.get(SESSION_COOKIE, "")

    async def still_allowed() -> bool:
        """The browser session still live (not signed out, here or everywhere, nor ended by a
        password change) and its user still in the task's organization."""
        async with ctx.sessionmaker() as check:
            if not await still_allowed_in(check, caller.principal, organization_id):
                return False
            # Last, with no query after it: the seen-at time it sets is never flushed (no write,
            # no SQLite write lock) and is dropped with the session.
            record = await live_browser_session(check, token)
            return record is not None and record.user_id == user_id

    stream = follow_logs(
        ctx.sessionmaker,
        events,
        organization_id,
        task.id,
        after=parse_log_event_id(last_event_id or after),
        with_ids=True,
        statuses=True,
        still_allowed=still_allowed,
    )
    return StreamingResponse(stream, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/tasks/{task_id}/result.json")
async def download_result(task_id: str, caller: Caller, session: Session) -> Response:
    """The task's result as a JSON file."""
    task = await _task(session, caller, task_id)
    if task.result is None:
        raise NotFound("Result")
    body = json.dumps(task.result, indent=2, ensure_ascii=False)
    headers = {
        "Content-Disposition": content_disposition(f"result-{task.id}.json"),
        "X-Content-Type-Options": "nosniff",
    }
    return Response(body, media_type="application/json", headers=headers)


@router.get("/tasks/{task_id}/logs.txt")
async def download_logs(task_id: str, caller: Caller, session: Session) -> Response:
    """The whole log as a text file (the page shows the first lines)."""
    task = await _task(session, caller, task_id)
    chunks = await TaskOutputRepository(session).log_chunks(task.id, limit=1_000_000)
    headers = {
        "Content-Disposition": content_disposition(f"logs-{task.id}.txt"),
        "X-Content-Type-Options": "nosniff",
    }
    text = "".join(chunk.data for chunk in chunks)
    return Response(text, media_type="text/plain; charset=utf-8", headers=headers)


@router.get("/tasks/{task_id}/artifacts/{artifact_id}")
async def download_artifact(
    task_id: str, artifact_id: str, caller: Caller, session: Session, ctx: Context
) -> Response:
    """One artifact, as a download (or a redirect to the bucket's presigned URL)."""
    task = await _task(session, caller, task_id)
    try:
        parsed = uuid.UUID(artifact_id)
    except ValueError:
        raise NotFound("Artifact") from None
    artifact = await TaskOutputRepository(session).artifact(task.id, parsed)
    if artifact is None:
        raise NotFound("Artifact")
    return await artifact_download(ctx.storage, artifact)
