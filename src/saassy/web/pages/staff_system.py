"""The staff's system page: the isolation in force, the executor, and how far behind the
queue and the e-mail outbox are, and how many meter errors Stripe reported."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy import __version__
from saassy.admin.queue import QueueRepository
from saassy.billing.repository import EventRepository
from saassy.billing.webhooks import METER_ERROR
from saassy.deps import Context, Session
from saassy.kit.time import utcnow
from saassy.web.caller import StaffCaller
from saassy.web.templating import render

router = APIRouter(prefix="/staff")


@router.get("/system", response_class=HTMLResponse)
async def system(request: Request, staff: StaffCaller, session: Session, ctx: Context) -> Response:
    """What /api/v1/system says, the executor's slots, queue depth and lag, outbox backlog."""
    now = utcnow()
    queue = QueueRepository(session)
    depth = await queue.depth(now)
    engine = ctx.task_engine
    executor = engine.executor if engine is not None else None
    return render(
        request,
        "app/staff/system.html",
        {
            "now": now,
            "version": __version__,
            "database": ctx.engine.dialect.name,
            "runtime": engine.runtime.describe() if engine is not None else None,
            "executor": executor,
            "executor_kind": type(executor).__name__ if executor is not None else None,
            "depth": depth,
            "oldest_age_s": (now - depth.oldest_created_at).total_seconds()
            if depth.oldest_created_at
            else None,
            "lag_s": max(0.0, (now - depth.oldest_due_at).total_seconds())
            if depth.oldest_due_at
            else None,
            "live": await queue.live(),
            "by_organization": await queue.by_organization(),
            "by_type": await queue.by_type(),
            "outbox": await queue.outbox(),
            "billing_enabled": ctx.stripe_api is not None,
            "meter_errors": await EventRepository(session).count_of_type(METER_ERROR),
        },
    )
