"""`/api/v1/account/export(s)` and `/api/v1/organizations/{id}/export`: GDPR data exports.

A signed-in user only (an API key is refused with 403 `user_required`: a key belongs to an
organization, not to a person, and the archive is announced to a person by e-mail). The rule
says `admin` for writes should a key ever be let through; reads (status, download) stay the
requester's own: any other user's export is a 404.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response, status

from saassy.auth.dependencies import CurrentUser
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import Context, RequestOrigin, Session, SettingsDep
from saassy.privacy import exports
from saassy.privacy.export_downloads import archive_download
from saassy.privacy.export_schemas import ExportList, ExportOut

router = APIRouter(tags=["privacy"], dependencies=[READ_OR_ADMIN])

GONE: dict[int | str, dict[str, Any]] = {
    410: {"description": "The export expired: its archive was removed."}
}


def _user_id(principal: CurrentUser) -> uuid.UUID:
    assert principal.user_id is not None
    return principal.user_id


@router.post("/account/export", status_code=status.HTTP_202_ACCEPTED)
async def request_account_export(
    principal: CurrentUser, session: Session, settings: SettingsDep, origin: RequestOrigin
) -> ExportOut:
    """Queue a ZIP of everything held about you; its link is e-mailed when it is ready."""
    export = await exports.request_account_export(session, settings, principal, origin)
    return ExportOut.of(export)


@router.post("/organizations/{organization_id}/export", status_code=status.HTTP_202_ACCEPTED)
async def request_organization_export(
    organization_id: uuid.UUID,
    principal: CurrentUser,
    session: Session,
    settings: SettingsDep,
    origin: RequestOrigin,
) -> ExportOut:
    """Queue a ZIP of the organization's data, its members' included (owners only)."""
    export = await exports.request_organization_export(
        session, settings, principal, organization_id, origin
    )
    return ExportOut.of(export)


@router.get("/account/exports")
async def list_exports(principal: CurrentUser, session: Session) -> ExportList:
    """Your latest account exports."""
    rows = await exports.recent_exports(session, _user_id(principal))
    return ExportList(items=[ExportOut.of(row) for row in rows])


@router.get("/account/exports/{export_id}")
async def get_export(export_id: uuid.UUID, principal: CurrentUser, session: Session) -> ExportOut:
    """One of your exports (account or organization): its status."""
    return ExportOut.of(await exports.get_export(session, _user_id(principal), export_id))


@router.get(
    "/account/exports/{export_id}/download",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}, **GONE},
)
async def download_export(
    export_id: uuid.UUID,
    principal: CurrentUser,
    session: Session,
    ctx: Context,
    origin: RequestOrigin,
) -> Response:
    """The archive (the requester only); 410 once expired."""
    export = await exports.open_download(session, principal, export_id, origin)
    return await archive_download(ctx.storage, export)
