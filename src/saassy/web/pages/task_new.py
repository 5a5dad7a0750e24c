"""Submitting a task from a form generated from its type's JSON Schema."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.deps import Session, SettingsDep, app_context
from saassy.kit.errors import QuotaExceeded, SaassyError
from saassy.plans.catalog import Catalog, Plan
from saassy.plans.service import plan_with_overrides
from saassy.tasks import service
from saassy.tasks.catalog import TaskType
from saassy.tasks.schemas import MAX_PRIORITY, TaskSubmit
from saassy.web.caller import Caller, DashboardCaller
from saassy.web.forms import FormInvalid, error_of, form_data, parse_form
from saassy.web.pages.task_form import (
    InputField,
    choice_value,
    default_values,
    form_values_of,
    input_fields,
    input_from_form,
)
from saassy.web.pages.task_messages import quota_message
from saassy.web.templating import redirect, render

router = APIRouter()


async def undo_writes(session: AsyncSession) -> None:
    """A refused submission: nothing it wrote stays. The caller's user and organizations are
    detached first so the page shown next still has them (a rollback expires what it holds)."""
    session.expunge_all()
    await session.rollback()


def plan_of(catalog: Catalog, caller: DashboardCaller) -> Plan:
    """The plan the caller's organization has, with its contract's overrides."""
    organization = caller.organization
    return plan_with_overrides(
        catalog, organization.plan, organization.plan_overrides, organization.id
    )


def _form(
    request: Request,
    caller: DashboardCaller,
    catalog: Catalog,
    task_type: TaskType | None,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    status_code: int = 200,
) -> Response:
    plan = plan_of(catalog, caller)
    fields: list[InputField] = input_fields(task_type.input_schema) if task_type else []
    return render(
        request,
        "app/tasks/new.html",
        {
            "task_types": service.list_task_types(catalog),
            "task_type": task_type,
            "fields": fields,
            "values": values,
            "errors": errors,
            "plan": plan,
            "max_timeout": min(task_type.max_timeout_s, plan.max_task_duration_s)
            if task_type
            else None,
            "default_timeout": min(task_type.default_timeout_s, plan.max_task_duration_s)
            if task_type
            else None,
            "max_priority": MAX_PRIORITY,
            "choice_value": choice_value,
        },
        status_code=status_code,
    )


@router.get("/tasks/new", response_class=HTMLResponse)
async def new_task(
    request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    """Choose a type, then fill in its input; `?from=<task id>` starts from an earlier task."""
    catalog = settings.catalog
    task_type = catalog.task_type(request.query_params.get("type", ""))
    values: dict[str, str] = {}
    source = request.query_params.get("from")
    if source:
        try:
            earlier = await service.get_task(session, caller.principal.scope, uuid.UUID(source))
        except (ValueError, SaassyError):
            earlier = None
        if earlier is not None:
            task_type = catalog.task_type(earlier.type)
            if task_type is not None:
                values = form_values_of(input_fields(task_type.input_schema), earlier.input)
                values["timeout_s"] = str(earlier.timeout_s)
                values["priority"] = str(earlier.priority)
    elif task_type is not None:
        values = default_values(input_fields(task_type.input_schema))
    return _form(request, caller, catalog, task_type, values, {})


@router.post("/tasks/new")
async def submit_new_task(
    request: Request, caller: Caller, session: Session, settings: SettingsDep
) -> Response:
    """Admit and queue the task (quotas, schema, plan limits), then show its page."""
    catalog = settings.catalog
    values = await form_data(request)
    task_type = catalog.task_type(values.get("type", ""))
    if task_type is None:
        return _form(
            request, caller, catalog, None, values, {"type": "Choose a task type."}, status_code=422
        )
    fields = input_fields(task_type.input_schema)
    task_input, errors = input_from_form(fields, values)
    try:
        body = parse_form(
            TaskSubmit,
            {
                "type": task_type.name,
                "input": task_input,
                "timeout_s": values.get("timeout_s") or None,
                "priority": values.get("priority") or 0,
            },
        )
    except FormInvalid as exc:
        errors = {**exc.errors, **errors}
    if errors:
        return _form(request, caller, catalog, task_type, values, errors, status_code=422)
    try:
        submission = await service.submit_task(
            session,
            settings,
            caller.principal,
            caller.organization,
            body,
            program_refusal=app_context(request).program_refusal,
        )
    except QuotaExceeded as exc:
        await undo_writes(session)
        form_errors = {"form": quota_message(exc)}
        return _form(request, caller, catalog, task_type, values, form_errors, status_code=402)
    except SaassyError as exc:
        await undo_writes(session)
        shown = error_of(exc)
        # Admission names a field as "input.<property>" (the form's own names), "timeout_s",
        # "type", or "input" for the whole document; a deeper path goes on its top property.
        field = exc.field or "form"
        if field.startswith("input.") and field not in {f.name for f in fields}:
            top = ".".join(field.split(".")[:2])
            shown = {top if top in {f.name for f in fields} else "input": exc.message}
        elif field == "input" and not any(f.name == "input" for f in fields):
            shown = {"form": exc.message}
        return _form(
            request, caller, catalog, task_type, values, shown, status_code=exc.status_code
        )
    task = submission.task
    return redirect(request, f"/app/tasks/{task.id}", message=f"Task queued ({task.type}).")
