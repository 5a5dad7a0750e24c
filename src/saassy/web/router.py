"""The dashboard: public pages, sign-in pages and the signed-in app, server-rendered, with
CSRF checked on every form; static assets served from the package (nothing from the internet)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from saassy.deps import SettingsDep
from saassy.web.caller import csrf_guard
from saassy.web.pages import account, auth, auth_links, home, public
from saassy.web.templating import TOKEN_PAGE_HEADERS, render

STATIC_DIR = Path(__file__).parent / "static"
static_files = StaticFiles(directory=STATIC_DIR)

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])
router.include_router(public.router)
router.include_router(auth.router)
router.include_router(auth_links.router)

# The signed-in app lives under /app; each area adds its router here.
for area in (home.router, account.router):
    router.include_router(area, prefix="/app")


@router.get("/invitations/accept", response_class=HTMLResponse)
async def accept_invitation(request: Request, settings: SettingsDep) -> Response:
    """Where an invitation e-mail points: explains how to join the organization."""
    return render(
        request,
        "invitation.html",
        {"accept_path": "/api/v1/invitations/accept"},
        headers=TOKEN_PAGE_HEADERS,
    )
