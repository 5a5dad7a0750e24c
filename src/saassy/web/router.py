"""The dashboard: public pages, sign-in pages and the signed-in app, server-rendered, with
CSRF checked on every form; static assets served from the package (nothing from the internet)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from saassy.deps import SettingsDep
from saassy.web.caller import MaybeCaller, csrf_guard
from saassy.web.pages import auth, home, public, task_detail, task_new, tasks
from saassy.web.templating import render

STATIC_DIR = Path(__file__).parent / "static"
static_files = StaticFiles(directory=STATIC_DIR)

# A token in the address bar must not leak to other sites or stay in a shared cache.
TOKEN_PAGE_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])
router.include_router(public.router)
router.include_router(auth.router)

# The signed-in app lives under /app; each area adds its router here.
# /tasks/new before /tasks/{task_id}.
for area in (home.router, task_new.router, tasks.router, task_detail.router):
    router.include_router(area, prefix="/app")


@router.get("/login/magic", response_class=HTMLResponse)
async def magic_link(request: Request, caller: MaybeCaller) -> Response:
    """Where a magic-link e-mail points: exchanges the link's token for a session."""
    return render(
        request,
        "magic_link.html",
        {"verify_path": "/api/v1/auth/magic-link/verify"},
        headers=TOKEN_PAGE_HEADERS,
    )


@router.get("/invitations/accept", response_class=HTMLResponse)
async def accept_invitation(request: Request, settings: SettingsDep) -> Response:
    """Where an invitation e-mail points: explains how to join the organization."""
    return render(
        request,
        "invitation.html",
        {"accept_path": "/api/v1/invitations/accept"},
        headers=TOKEN_PAGE_HEADERS,
    )
