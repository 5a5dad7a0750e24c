"""Data exports: requesting one (rate-limited, audited), reading its status, and opening its
archive for download (the requester only, until it expires)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor, Origin
from saassy.audit.service import Target, record
from saassy.auth.principal import Principal
from saassy.config import Settings
from saassy.kit.after_commit import after_commit
from saassy.kit.time import as_utc, utcnow
from saassy.models import DataExport, ExportStatus, Role
from saassy.organizations.errors import OwnerRequired
from saassy.organizations.service import caller_role, get_organization
from saassy.privacy.export_effects import EXPORT_QUEUED
from saassy.privacy.export_errors import (
    ExportExpired,
    ExportInProgress,
    ExportNotFound,
    ExportNotReady,
    ExportsRateLimited,
)
from saassy.privacy.export_repository import DataExportRepository

RATE_WINDOW = timedelta(hours=24)
RECENT = 5  # how many of a user's exports the dashboard shows


def kind_of(export: DataExport) -> str:
    return "account" if export.organization_id is None else "organization"


async def _admit(
    repo: DataExportRepository, settings: Settings, user_id: uuid.UUID, now: datetime
) -> None:
    """One unfinished export per user, and `export_limit_per_day` in any 24 hours."""
    unfinished = await repo.unfinished_of(user_id)
    if unfinished is not None:
        raise ExportInProgress(unfinished.id)
    requested = await repo.requested_since(user_id, now - RATE_WINDOW)
    limit = settings.export_limit_per_day
    if len(requested) >= limit:
        frees_at = as_utc(requested[-limit]) + RATE_WINDOW
        raise ExportsRateLimited(int((frees_at - now).total_seconds()) + 1, limit)


async def _request(
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    organization_id: uuid.UUID | None,
    origin: Origin,
) -> DataExport:
    repo = DataExportRepository(session)
    await _admit(repo, settings, user_id, utcnow())
    export = await repo.add(DataExport(user_id=user_id, organization_id=organization_id))
    await record(
        session,
        AuditAction.data_export_requested,
        Actor.user(user_id, origin),
        organization_id=organization_id,
        target=Target(TargetType.data_export, export.id),
        details={"kind": kind_of(export)},
    )
    after_commit(session, EXPORT_QUEUED)
    return export


async def request_account_export(
    session: AsyncSession, settings: Settings, principal: Principal, origin: Origin
) -> DataExport:
    """Queue an export of everything held about the signed-in user."""
    assert principal.user_id is not None  # a signed-in user (the route requires one)
    return await _request(session, settings, principal.user_id, None, origin)


async def request_organization_export(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    organization_id: uuid.UUID,
    origin: Origin,
) -> DataExport:
    """Queue an export of one organization's data (owners only; 404 outside the caller's)."""
    assert principal.user_id is not None
    organization = await get_organization(session, principal, organization_id)
    if caller_role(principal, organization.id) is not Role.owner:
        raise OwnerRequired("Only an owner may export the organization's data.")
    return await _request(session, settings, principal.user_id, organization.id, origin)


async def get_export(session: AsyncSession, user_id: uuid.UUID, export_id: uuid.UUID) -> DataExport:
    """One of the user's own exports; anyone else's is a 404."""
    export = await DataExportRepository(session).of_user(export_id, user_id)
    if export is None:
        raise ExportNotFound()
    return export


async def recent_exports(
    session: AsyncSession, user_id: uuid.UUID, organization_id: uuid.UUID | None = None
) -> Sequence[DataExport]:
    """The user's latest exports of their account, or of one organization."""
    return await DataExportRepository(session).recent(user_id, organization_id, RECENT)


def is_expired(export: DataExport, now: datetime) -> bool:
    return export.status == ExportStatus.expired or (
        export.expires_at is not None and as_utc(export.expires_at) <= now
    )


async def open_download(
    session: AsyncSession, principal: Principal, export_id: uuid.UUID, origin: Origin
) -> DataExport:
    """The export whose archive the requester is about to download (audited): 410 once
    expired, even before the sweeper removed it; 409 while not ready; an organization's
    only while the requester is still one of its owners."""
    assert principal.user_id is not None
    user_id = principal.user_id
    export = await get_export(session, user_id, export_id)
    if export.organization_id is not None and (
        principal.role_in(export.organization_id) is not Role.owner
    ):
        raise OwnerRequired("Only an owner may download the organization's data.")
    if is_expired(export, utcnow()):
        raise ExportExpired()
    if export.status != ExportStatus.ready or export.storage_key is None:
        raise ExportNotReady(f"This export is {export.status}; it has no archive yet.")
    await record(
        session,
        AuditAction.data_export_downloaded,
        Actor.user(user_id, origin),
        organization_id=export.organization_id,
        target=Target(TargetType.data_export, export.id),
        details={"kind": kind_of(export)},
    )
    return export
