"""The task list: filters in the URL, keyset paging both ways, bulk cancel and re-run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.config import Settings
from saassy.deps import Session, SettingsDep, app_context
from saassy.kit.errors import QuotaExceeded, SaassyError
from saassy.kit.pagination import PageParams, decode_cursor, encode_cursor
from saassy.kit.time import as_utc, utcnow
from saassy.models import Task, TaskStatus
from saassy.plans.catalog import Catalog
from saassy.tasks import service
from saassy.tasks.errors import TaskFinished
from saassy.tasks.repository import TaskFilters, TaskRepository
from saassy.tasks.schemas import TaskSubmit
from saassy.web.caller import Caller, DashboardCaller
from saassy.web.csrf import FORM_FIELD
from saassy.web.pages.task_messages import quota_message
from saassy.web.templating import duration, env, redirect, render

router = APIRouter()


def task_duration(task: Task) -> str:
    """How long it has run (or ran): from its first start to its end, or to now."""
    if task.started_at is None:
        return "—"
    end = as_utc(task.finished_at) if task.finished_at else utcnow()
    return duration((end - as_utc(task.started_at)).total_seconds())


def optional_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


# SQLite hands back naive times: the task pages show them through `utc`.
env.filters.update(task_duration=task_duration, utc=optional_utc)

PAGE_SIZE = 50
# Bulk actions on "every task matching the filter" act on this many at most per request.
BULK_LIMIT = 1000


@dataclass(frozen=True)
class ListQuery:
    """The list's filters as the URL carries them (the form's own values, to show them again)."""

    status: str = ""
    type: str = ""
    created_from: str = ""
    created_to: str = ""

    @classmethod
    def of(cls, values: dict[str, str], catalog: Catalog) -> ListQuery:
        status = values.get("status", "")
        kind = values.get("type", "")
        return cls(
            status=status if status in TaskStatus.__members__ else "",
            type=kind if kind in catalog.task_types else "",
            created_from=values.get("from", "") if _day(values.get("from")) else "",
            created_to=values.get("to", "") if _day(values.get("to")) else "",
        )

    @property
    def filters(self) -> TaskFilters:
        start, end = _day(self.created_from), _day(self.created_to)
        return TaskFilters(
            statuses=(TaskStatus(self.status),) if self.status else (),
            type=self.type or None,
            created_after=datetime(start.year, start.month, start.day, tzinfo=UTC)
            if start
            else None,
            # "To" is inclusive: up to the end of that day.
            created_before=datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
            if end and end < date.max  # the last day there is: no bound (its next day overflows)
            else None,
        )

    @property
    def params(self) -> dict[str, str]:
        pairs = {
            "status": self.status,
            "type": self.type,
            "from": self.created_from,
            "to": self.created_to,
        }
        return {k: v for k, v in pairs.items() if v}

    @property
    def active(self) -> bool:
        return bool(self.params)

    def url(self, **extra: str) -> str:
        query = urlencode({**self.params, **extra})
        return f"/app/tasks?{query}" if query else "/app/tasks"


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _cursor(value: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not value:
        return None
    try:
        return decode_cursor(value)
    except SaassyError:
        return None


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    newer: str | None  # cursor for "Previous" (the newer tasks), None on the first page
    older: str | None  # cursor for "Next"


async def task_page(
    session: AsyncSession,
    caller: DashboardCaller,
    filters: TaskFilters,
    after: tuple[datetime, uuid.UUID] | None,
    before: tuple[datetime, uuid.UUID] | None,
    size: int = PAGE_SIZE,
) -> TaskPage:
    """One page of the organization's tasks, newest first, by keyset in either direction: the
    cost is the same on page 1 and page 100."""
    repository = TaskRepository(session)
    scope, organization_id = caller.principal.scope, caller.organization.id
    if before is not None:
        rows = list(
            await repository.list_for_organization(
                organization_id,
                scope,
                filters,
                PageParams(limit=size, after=before),
                newest_first=False,
            )
        )
        more_newer = len(rows) > size
        tasks = list(reversed(rows[:size]))
        if not tasks:  # nothing newer any more: show the first page
            return await task_page(session, caller, filters, None, None, size)
        newer_page = encode_cursor(tasks[0].created_at, tasks[0].id) if more_newer else None
        return TaskPage(tasks, newer_page, encode_cursor(tasks[-1].created_at, tasks[-1].id))
    rows = list(
        await repository.list_for_organization(
            organization_id, scope, filters, PageParams(limit=size, after=after)
        )
    )
    tasks = rows[:size]
    older = encode_cursor(tasks[-1].created_at, tasks[-1].id) if len(rows) > size else None
    newer = encode_cursor(tasks[0].created_at, tasks[0].id) if after is not None and tasks else None
    return TaskPage(tasks, newer, older)


@router.get("/tasks", response_class=HTMLResponse)
async def task_list(
    request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    """The organization's tasks, newest first, filtered by status, type and creation day."""
    values = dict(request.query_params)
    query = ListQuery.of(values, settings.catalog)
    page = await task_page(
        session,
        caller,
        query.filters,
        _cursor(values.get("after")),
        _cursor(values.get("before")),
    )
    return render(
        request,
        "app/tasks/list.html",
        {
            "query": query,
            "page": page,
            "statuses": list(TaskStatus),
            "task_types": service.list_task_types(settings.catalog),
            "bulk_limit": BULK_LIMIT,
            "first_page": values.get("after") is None and page.newer is None,
        },
    )


@router.post("/tasks/bulk")
async def bulk_action(
    request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    """Cancel or re-run the checked tasks, or every task matching the filter (capped)."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != FORM_FIELD}
    query = ListQuery.of(values, settings.catalog)
    back = query.url()
    action = values.get("action", "")
    if action not in ("cancel", "rerun"):
        return redirect(request, back, message="Choose an action: cancel or re-run.", kind="error")
    capped = False
    if values.get("scope") == "matching":
        rows = await TaskRepository(session).list_for_organization(
            caller.organization.id,
            caller.principal.scope,
            query.filters,
            PageParams(limit=BULK_LIMIT, after=None),
        )
        capped = len(rows) > BULK_LIMIT
        ids = [task.id for task in rows[:BULK_LIMIT]]
    else:
        ids = []
        for raw in form.getlist("ids"):
            try:
                ids.append(uuid.UUID(str(raw)))
            except ValueError:
                continue
        ids = list(dict.fromkeys(ids))[:BULK_LIMIT]
    if not ids:
        return redirect(request, back, message="No tasks were selected.", kind="info")
    if action == "cancel":
        message = await _bulk_cancel(session, caller, ids)
    else:
        refusal = app_context(request).program_refusal
        message, failed = await _bulk_rerun(session, settings, caller, ids, refusal)
        if failed:
            return redirect(request, back, message=message + _cap_note(capped), kind="error")
    return redirect(request, back, message=message + _cap_note(capped))


def _cap_note(capped: bool) -> str:
    if not capped:
        return ""
    return (
        f" Only the newest {BULK_LIMIT:,} matching tasks were included, the most one action "
        "takes; run it again (or narrow the filter) for the rest."
    )


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}"


async def _bulk_cancel(session: AsyncSession, caller: DashboardCaller, ids: list[uuid.UUID]) -> str:
    canceled = stopping = ended = missing = 0
    for task_id in ids:
        try:
            cancellation = await service.cancel_task(session, caller.principal.scope, task_id)
        except TaskFinished:
            ended += 1
            continue
        except SaassyError:  # another tenant's id, or gone: said as "not found"
            missing += 1
            continue
        if cancellation.executor_must_stop:
            stopping += 1
        else:
            canceled += 1
    parts = [_count(canceled, "canceled")]
    if stopping:
        parts.append(_count(stopping, "stopping (they were running)"))
    if ended:
        parts.append(f"{ended:,} had already ended")
    if missing:
        parts.append(f"{missing:,} not found")
    return ", ".join(parts) + "."


async def _bulk_rerun(
    session: AsyncSession,
    settings: Settings,
    caller: DashboardCaller,
    ids: list[uuid.UUID],
    program_refusal: service.ProgramRefusal,
) -> tuple[str, bool]:
    """New tasks with the same type, input, priority and timeout; stops at the first quota
    refusal (the rest would be refused too)."""
    started = refused = missing = 0
    stop: str | None = None
    for task_id in ids:
        try:
            task = await service.get_task(session, caller.principal.scope, task_id)
        except SaassyError:
            missing += 1
            continue
        body = rerun_body(task)
        try:
            async with session.begin_nested():
                await service.submit_task(
                    session,
                    settings,
                    caller.principal,
                    caller.organization,
                    body,
                    program_refusal=program_refusal,
                )
        except QuotaExceeded as exc:
            stop = quota_message(exc)
            break
        except SaassyError:
            refused += 1
            continue
        started += 1
    parts = [_count(started, "re-run")]
    if refused:
        parts.append(f"{refused:,} refused (the type or plan no longer allows them)")
    if missing:
        parts.append(f"{missing:,} not found")
    message = ", ".join(parts) + "."
    if stop is not None:
        message += f" Stopped: {stop}"
    return message, stop is not None and started == 0


def rerun_body(task: Task) -> TaskSubmit:
    """A task submitted again as it was: same type, input, priority and timeout."""
    return TaskSubmit(
        type=task.type, input=task.input, priority=task.priority, timeout_s=task.timeout_s
    )
