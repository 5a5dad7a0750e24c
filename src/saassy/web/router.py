"""The dashboard: public pages, sign-in pages and the signed-in app, server-rendered, with
CSRF checked on every form; static assets served from the package (nothing from the internet)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.staticfiles import StaticFiles

from saassy.web.caller import csrf_guard
from saassy.web.pages import (
    account,
    api_keys,
    audit_log,
    auth,
    auth_links,
    billing,
    data_exports,
    home,
    invitation,
    members,
    notifications,
    organization,
    public,
    schedules,
    secrets,
    staff,
    staff_billing,
    staff_system,
    task_detail,
    task_new,
    tasks,
    webhooks,
)

STATIC_DIR = Path(__file__).parent / "static"
static_files = StaticFiles(directory=STATIC_DIR)

router = APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])
router.include_router(public.router)
router.include_router(auth.router)
router.include_router(invitation.router)
router.include_router(auth_links.router)
router.include_router(account.public_router)

# The signed-in app lives under /app; each area adds its router here.
# /tasks/new before /tasks/{task_id}.
for area in (
    home.router,
    billing.router,
    task_new.router,
    tasks.router,
    task_detail.router,
    schedules.router,
    organization.router,
    members.router,
    audit_log.router,
    api_keys.router,
    webhooks.router,
    secrets.router,
    notifications.router,
    account.router,
    data_exports.router,
    staff.router,
    staff_system.router,
    staff_billing.router,
):
    router.include_router(area, prefix="/app")
