"""Schedules of the organization the dashboard works in: the list with each one's next run,
paused state and last refusal; a form to create one; a page with its next runs and history;
pause, resume and delete. Every rule is the API's (schedules/service.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.deps import RequestOrigin, Session, SettingsDep
from saassy.kit.errors import SaassyError
from saassy.kit.pagination import PageParams
from saassy.models import CatchUp
from saassy.schedules import service
from saassy.schedules.actors import pause_message, pause_note
from saassy.schedules.errors import ScheduleNotFound
from saassy.schedules.schemas import NEXT_RUNS_SHOWN, ScheduleCreate
from saassy.tasks.service import list_task_types
from saassy.web.caller import Caller, DashboardCaller
from saassy.web.forms import (
    FormInvalid,
    error_of,
    form_data,
    onto_form,
    parse_form,
    status_of_refusal,
)
from saassy.web.templating import redirect, render

router = APIRouter()

PAGE = "/app/schedules"
# An organization holds at most this many, so one page shows them all.
ALL_SCHEDULES = PageParams(limit=service.MAX_SCHEDULES_PER_ORGANIZATION, after=None)
HISTORY = PageParams(limit=50, after=None)
NEW_DEFAULTS = {"cadence": "cron", "cron": "0 9 * * *", "timezone": "UTC", "input": "{}"}


def schedule_uuid(value: str) -> uuid.UUID:
    """An id from the address: one that is not a UUID is as unknown as a missing schedule."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ScheduleNotFound() from None


@router.get("/schedules", response_class=HTMLResponse)
async def list_schedules(
    request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    items, _ = await service.list_schedules(
        session, caller.principal, caller.organization.id, ALL_SCHEDULES
    )
    context: dict[str, Any] = {
        "items": items,
        "next_runs": {item.id: service.next_runs(item, 1) for item in items},
        "pause_notes": {item.id: pause_note(item) for item in items},
        "limit": service.MAX_SCHEDULES_PER_ORGANIZATION,
        "base_url": settings.base_url.rstrip("/"),
    }
    return render(request, "app/schedules/list.html", context)


def new_page(
    request: Request,
    settings: SettingsDep,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    context = {
        "task_types": list_task_types(settings.catalog),
        "values": values,
        "errors": errors or {},
        "catch_ups": list(CatchUp),
    }
    return render(request, "app/schedules/new.html", context, status_code=status_code)


@router.get("/schedules/new", response_class=HTMLResponse)
async def new_schedule_page(request: Request, caller: Caller, settings: SettingsDep) -> Response:
    return new_page(request, settings, dict(NEW_DEFAULTS))


def body_of(values: dict[str, str]) -> ScheduleCreate:
    """The API's body from the form's fields; FormInvalid names the fields at fault."""
    try:
        input_value = json.loads(values.get("input") or "{}")
    except json.JSONDecodeError as exc:
        raise FormInvalid({"input": f"Not valid JSON: {exc.msg} (line {exc.lineno})."}) from None
    data: dict[str, Any] = {
        "name": values.get("name", "").strip(),
        "type": values.get("type", ""),
        "input": input_value,
        "timezone": values.get("timezone", "").strip() or "UTC",
        "catch_up": values.get("catch_up", CatchUp.once.value),
    }
    if values.get("cadence") == "interval":
        data["interval_s"] = values.get("interval_s", "").strip() or None
    else:
        data["cron"] = values.get("cron", "").strip() or None
    return parse_form(ScheduleCreate, data)


FIELDS = ("name", "type", "input", "cron", "timezone", "interval_s", "catch_up")


def beside_fields(errors: dict[str, str]) -> dict[str, str]:
    """An error about a part of the input (input.url) goes beside the input's one box; one
    about no field of the form above it."""
    return onto_form(errors, FIELDS)


@router.post("/schedules/new")
async def create_schedule(
    request: Request,
    caller: Caller,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> Response:
    values = await form_data(request)
    try:
        body = body_of(values)
        schedule = await service.create_schedule(
            session, settings, caller.principal, caller.organization, body, origin=origin
        )
    except FormInvalid as exc:
        return new_page(request, settings, values, beside_fields(exc.errors), status_code=422)
    except SaassyError as exc:
        status = status_of_refusal(exc)
        return new_page(request, settings, values, beside_fields(error_of(exc)), status)
    return redirect(request, f"{PAGE}/{schedule.id}", message="Schedule created.")


@router.get("/schedules/{schedule_id}", response_class=HTMLResponse)
async def show_schedule(
    schedule_id: str, request: Request, caller: Caller, session: Session
) -> Response:
    schedule = await service.get_schedule(
        session, caller.principal, caller.organization.id, schedule_uuid(schedule_id)
    )
    runs, _ = await service.list_runs(
        session, caller.principal, caller.organization.id, schedule.id, HISTORY
    )
    context = {
        "schedule": schedule,
        "next_runs": service.next_runs(schedule, NEXT_RUNS_SHOWN),
        "pause_message": pause_message(schedule),
        "runs": runs,
        "input_json": json.dumps(schedule.input, indent=2, ensure_ascii=False),
    }
    return render(request, "app/schedules/detail.html", context)


async def _set_paused(
    request: Request,
    caller: DashboardCaller,
    session: Session,
    origin: RequestOrigin,
    schedule_id: str,
    paused: bool,
) -> Response:
    await service.set_paused(
        session,
        caller.principal,
        caller.organization.id,
        schedule_uuid(schedule_id),
        paused,
        origin=origin,
    )
    back = f"{PAGE}/{schedule_id}" if request.query_params.get("from") == "detail" else PAGE
    return redirect(request, back, message="Schedule paused." if paused else "Schedule resumed.")


@router.post("/schedules/{schedule_id}/pause")
async def pause_schedule(
    schedule_id: str, request: Request, caller: Caller, session: Session, origin: RequestOrigin
) -> Response:
    return await _set_paused(request, caller, session, origin, schedule_id, True)


@router.post("/schedules/{schedule_id}/resume")
async def resume_schedule(
    schedule_id: str, request: Request, caller: Caller, session: Session, origin: RequestOrigin
) -> Response:
    return await _set_paused(request, caller, session, origin, schedule_id, False)


@router.post("/schedules/{schedule_id}/delete")
async def delete_schedule(
    schedule_id: str, request: Request, caller: Caller, session: Session, origin: RequestOrigin
) -> Response:
    await service.delete_schedule(
        session, caller.principal, caller.organization.id, schedule_uuid(schedule_id), origin=origin
    )
    return redirect(request, PAGE, message="Schedule deleted.")
