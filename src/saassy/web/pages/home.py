"""The dashboard's home, and switching the organization it acts on."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from saassy.accounts.browser_sessions import choose_organization
from saassy.deps import Session, SettingsDep
from saassy.kit.errors import NotFound
from saassy.web.caller import Caller
from saassy.web.forms import form_data
from saassy.web.templating import redirect, render

router = APIRouter()


@router.get("", response_class=HTMLResponse)
async def home(request: Request, caller: Caller, settings: SettingsDep) -> Response:
    catalog = settings.catalog
    return render(request, "app/home.html", {"plan": catalog.plan(caller.organization.plan)})


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
