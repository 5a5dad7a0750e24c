"""`/api/v1/api-keys`: the active organization's keys (`Saassy-Organization` picks it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from saassy.api_keys import service
from saassy.api_keys.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyOut,
    ApiKeyRotate,
    ApiKeyRotated,
)
from saassy.auth.dependencies import CurrentOrganization, CurrentPrincipal
from saassy.auth.principal import ActiveOrganization, Principal
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import RequestOrigin, Session
from saassy.kit.pagination import Page, PageParams, page_params
from saassy.models import ApiKey, ApiKeyScope

router = APIRouter(prefix="/api-keys", tags=["api-keys"], dependencies=[READ_OR_ADMIN])


@dataclass(frozen=True)
class KeyManagement:
    principal: Principal
    organization: ActiveOrganization


async def get_key_management(
    organization: CurrentOrganization, principal: CurrentPrincipal
) -> KeyManagement:
    """The active organization (404 if not the caller's), managed by a user who is admin+ (403)."""
    service.ensure_key_manager(principal, organization)
    return KeyManagement(principal, organization)


KeyManager = Annotated[KeyManagement, Depends(get_key_management)]


def _scopes(api_key: ApiKey) -> list[ApiKeyScope]:
    return [ApiKeyScope(scope) for scope in api_key.scopes.split()]


def _key_out(api_key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=api_key.id,
        name=api_key.name,
        prefix=api_key.prefix,
        scopes=_scopes(api_key),
        created_at=api_key.created_at,
        expires_at=api_key.expires_at,
        rotated_at=api_key.rotated_at,
        replaced_by_id=api_key.replaced_by_id,
        last_used_at=api_key.last_used_at,
        revoked_at=api_key.revoked_at,
    )


@router.get("")
async def list_api_keys(
    manager: KeyManager, session: Session, page: Annotated[PageParams, Depends(page_params)]
) -> Page[ApiKeyOut]:
    """The active organization's API keys (never the keys themselves)."""
    rows, next_cursor = await service.list_api_keys(
        session, manager.principal, manager.organization.id, page
    )
    return Page(items=[_key_out(key) for key in rows], next_cursor=next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_api_key(
    body: ApiKeyCreate, manager: KeyManager, session: Session, origin: RequestOrigin
) -> ApiKeyCreated:
    """Create an API key for the active organization; the key is shown in this answer only."""
    api_key, key = await service.create_api_key(
        session,
        manager.principal,
        manager.organization.id,
        body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
        origin=origin,
    )
    return ApiKeyCreated(
        id=api_key.id,
        name=api_key.name,
        prefix=api_key.prefix,
        key=key,
        scopes=_scopes(api_key),
        expires_at=api_key.expires_at,
        created_at=api_key.created_at,
    )


@router.post("/{key_id}/rotate", status_code=status.HTTP_201_CREATED)
async def rotate_api_key(
    key_id: uuid.UUID,
    organization: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    origin: RequestOrigin,
    body: ApiKeyRotate | None = None,
) -> ApiKeyRotated:
    """Replace a key with a new one (shown in this answer only); the old key keeps working for
    `overlap_s` seconds (24 h by default), then is refused."""
    overlap = timedelta(seconds=(body or ApiKeyRotate()).overlap_s)
    new, key, old = await service.rotate_api_key(
        session, principal, organization, key_id, overlap, origin=origin
    )
    return ApiKeyRotated(
        id=new.id,
        name=new.name,
        prefix=new.prefix,
        key=key,
        scopes=_scopes(new),
        expires_at=new.expires_at,
        created_at=new.created_at,
        replaces=_key_out(old),
    )


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_api_key(
    key_id: uuid.UUID,
    organization: CurrentOrganization,
    principal: CurrentPrincipal,
    session: Session,
    origin: RequestOrigin,
) -> Response:
    """Revoke an API key (a signed-in admin+); it stops working on the next request."""
    await service.revoke_api_key(session, principal, organization, key_id, origin=origin)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
