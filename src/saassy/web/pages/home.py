"""The dashboard's home: usage against the plan, usage per day, cost, recent tasks; and
switching the organization the dashboard acts on."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.accounts.browser_sessions import choose_organization
from saassy.deps import Context, Session, SettingsDep
from saassy.kit.errors import NotFound
from saassy.kit.pagination import PageParams
from saassy.kit.time import utcnow
from saassy.models import Role
from saassy.organizations.repository import OrganizationRepository
from saassy.tasks.repository import TaskFilters, TaskRepository
from saassy.web.caller import Caller
from saassy.web.charts import Point, bar_chart
from saassy.web.forms import form_data
from saassy.web.pages.billing_view import billing_page_headers, past_due_of
from saassy.web.pages.usage_view import cost_so_far, usage_of, usage_per_day
from saassy.web.templating import redirect, render

router = APIRouter()
RECENT_TASKS = 8


@router.get("", response_class=HTMLResponse)
async def home(
    request: Request, caller: Caller, session: Session, settings: SettingsDep, ctx: Context
) -> Response:
    """Usage this period against the plan, per day, its cost so far, and the latest tasks."""
    organization = await OrganizationRepository(session).get_in_scope(
        caller.organization.id, caller.principal.scope
    )
    if organization is None:
        raise NotFound("Organization")
    now = utcnow()
    usage = await usage_of(session, settings.catalog, organization, now)
    period = await usage_per_day(session, organization.id, usage.period_start, usage.period_end)
    days = [day for day in period if day.day <= now.date()]  # the period so far
    recent = await TaskRepository(session).list_for_organization(
        organization.id,
        caller.principal.scope,
        TaskFilters(),
        PageParams(limit=RECENT_TASKS, after=None),
    )
    month = usage.period_start.strftime("%B %Y")
    labels = [day.day.strftime("%b %-d") for day in days]
    tasks_chart = bar_chart(
        [Point(label, day.tasks) for label, day in zip(labels, days, strict=True)],
        title=f"Tasks submitted per day, {month}",
        description=f"{sum(d.tasks for d in days):,} tasks submitted in {month}, one bar per day "
        "(UTC); the table below lists each day's number.",
        y_label="Tasks",
        x_label="Day (UTC)",
        chart_id="chart-tasks",
    )
    cpu_chart = bar_chart(
        [Point(label, day.cpu_seconds) for label, day in zip(labels, days, strict=True)],
        title=f"CPU-seconds per day, {month}",
        description=f"{sum(d.cpu_seconds for d in days):,.1f} CPU-seconds used in {month}, one "
        "bar per day (UTC); the table below lists each day's number.",
        y_label="CPU-seconds",
        x_label="Day (UTC)",
        chart_id="chart-cpu",
    )
    return render(
        request,
        "app/home/home.html",
        {
            "organization": organization,
            "usage": usage,
            "plan": usage.plan,
            "days": days,
            "tasks_chart": tasks_chart,
            "cpu_chart": cpu_chart,
            "cost": cost_so_far(usage.plan),
            "recent": recent[:RECENT_TASKS],
            "api_base": str(request.base_url).rstrip("/"),
            "past_due": await past_due_of(session, ctx, organization),
            "is_admin": caller.can(Role.admin),
        },
        headers=billing_page_headers(settings),  # the past-due banner's portal form
    )


@router.post("/organization/switch")
async def switch_organization(request: Request, caller: Caller, session: Session) -> Response:
    values = await form_data(request)
    try:
        organization_id = uuid.UUID(values.get("organization_id", ""))
    except ValueError:
        raise NotFound("Organization") from None
    organization = next((o for o in caller.organizations if o.id == organization_id), None)
    if organization is None:
        raise NotFound("Organization")
    await choose_organization(session, caller.browser_session, organization_id)
    return redirect(request, "/app", message=f"Now working in {organization.name}.")
