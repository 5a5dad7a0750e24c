"""The dashboard: public pages, sign-in pages and the signed-in app, server-rendered, with
CSRF checked on every form; static assets served from the package (nothing from the internet)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from saassy.web.caller import MaybeCaller, csrf_guard
from saassy.web.pages import (
    api_keys,
    auth,
    home,
    invitation,
    members,
    organization,
    public,
    secrets,
    staff,
    staff_system,
    task_detail,
    task_new,
    tasks,
)
from saassy.web.templating import TOKEN_PAGE_HEADERS, render

STATIC_DIR = Path(__file__).parent / "static"
static_files = StaticFiles(directory=STATIC_DIR)

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])
router.include_router(public.router)
router.include_router(auth.router)
router.include_router(invitation.router)

# The signed-in app lives under /app; each area adds its router here.
# /tasks/new before /tasks/{task_id}.
for area in (
    home.router,
    task_new.router,
    tasks.router,
    task_detail.router,
    organization.router,
    members.router,
    api_keys.router,
    secrets.router,
    staff.router,
    staff_system.router,
):
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
