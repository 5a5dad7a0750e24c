"""Data exports on the dashboard: requesting one for your account or (owners) for the
organization, and downloading it, signed in as its requester (the e-mailed link lands here)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from saassy.deps import Context, RequestOrigin, Session, SettingsDep
from saassy.kit.errors import SaassyError
from saassy.privacy import exports
from saassy.privacy.export_downloads import archive_download
from saassy.web.caller import Caller
from saassy.web.templating import redirect

router = APIRouter()

QUEUED = "Your export is being prepared; we will e-mail you a download link when it is ready."


@router.post("/account/export")
async def request_account_export(
    request: Request, caller: Caller, session: Session, settings: SettingsDep, origin: RequestOrigin
) -> Response:
    try:
        await exports.request_account_export(session, settings, caller.principal, origin)
    except SaassyError as exc:
        if exc.status_code >= 500:
            raise
        return redirect(request, "/app/account", message=exc.message, kind="error")
    return redirect(request, "/app/account", message=QUEUED)


@router.post("/organization/export")
async def request_organization_export(
    request: Request, caller: Caller, session: Session, settings: SettingsDep, origin: RequestOrigin
) -> Response:
    try:
        await exports.request_organization_export(
            session, settings, caller.principal, caller.current.id, origin
        )
    except SaassyError as exc:
        if exc.status_code >= 500 or exc.status_code == 404:
            raise
        return redirect(request, "/app/organization", message=exc.message, kind="error")
    return redirect(request, "/app/organization", message=QUEUED)


@router.get("/account/exports/{export_id}/download")
async def download_export(
    export_id: uuid.UUID, caller: Caller, session: Session, ctx: Context, origin: RequestOrigin
) -> Response:
    """The archive, for its requester only (404 for anyone else, 410 once expired)."""
    export = await exports.open_download(session, caller.principal, export_id, origin)
    return await archive_download(ctx.storage, export)
