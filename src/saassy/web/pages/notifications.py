"""The signed-in user's notification e-mails: which kinds they get (in every organization)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.deps import Session
from saassy.notifications import service
from saassy.notifications.kinds import KINDS
from saassy.web.caller import Caller
from saassy.web.templating import redirect, render

router = APIRouter(prefix="/account/notifications")


@router.get("", response_class=HTMLResponse)
async def notifications(request: Request, caller: Caller, session: Session) -> Response:
    chosen = await service.preferences_of(session, caller.user.id)
    kinds = [
        {"kind": kind.value, "info": info, "enabled": chosen[kind]} for kind, info in KINDS.items()
    ]
    return render(request, "app/account/notifications.html", {"user": caller.user, "kinds": kinds})


@router.post("")
async def save_notifications(request: Request, caller: Caller, session: Session) -> Response:
    # A checkbox left unticked is not sent: every kind the form shows is set, on or off.
    form = await request.form()
    await service.update_preferences(
        session, caller.user.id, {kind: form.get(kind.value) == "on" for kind in KINDS}
    )
    return redirect(request, "/app/account/notifications", message="Notification settings saved.")
