"""The dashboard shell: a server-rendered front page and the pages e-mailed links land on."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from saassy.deps import SettingsDep

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

# A token in the address bar must not leak to other sites or stay in a shared cache.
TOKEN_PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, settings: SettingsDep) -> HTMLResponse:
    """The front page: what the service is, its plans, and how to start with the API."""
    catalog = settings.catalog
    return templates.TemplateResponse(
        request,
        "home.html",
        {
            "branding": catalog.branding,
            "plans": [plan for plan in catalog.plans.values() if plan.public],
            "default_plan": catalog.default_plan,
            "base_url": str(request.base_url).rstrip("/"),
        },
    )


@router.get("/login/magic", response_class=HTMLResponse)
async def magic_link(request: Request, settings: SettingsDep) -> HTMLResponse:
    """Where a magic-link e-mail points: exchanges the link's token for a session."""
    return templates.TemplateResponse(
        request,
        "magic_link.html",
        {"branding": settings.catalog.branding, "verify_path": "/api/v1/auth/magic-link/verify"},
        headers=TOKEN_PAGE_HEADERS,
    )


@router.get("/invitations/accept", response_class=HTMLResponse)
async def accept_invitation(request: Request, settings: SettingsDep) -> HTMLResponse:
    """Where an invitation e-mail points: explains how to join the organization."""
    return templates.TemplateResponse(
        request,
        "invitation.html",
        {
            "branding": settings.catalog.branding,
            "accept_path": "/api/v1/invitations/accept",
        },
        headers=TOKEN_PAGE_HEADERS,
    )
