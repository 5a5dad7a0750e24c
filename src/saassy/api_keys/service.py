"""API keys: an organization's credentials for programs, shown once and stored as a digest."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.verification import require_verified_email
from saassy.api_keys.repository import ApiKeyRepository
from saassy.api_keys.schemas import MAX_KEY_LIFETIME
from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor, Origin
from saassy.audit.service import Target, record
from saassy.auth.access_cache import AccessChanged
from saassy.auth.dependencies import API_KEY_PREFIX, key_expired
from saassy.auth.principal import ActiveOrganization, Principal
from saassy.kit.after_commit import after_commit
from saassy.kit.errors import Conflict, Forbidden, NotFound
from saassy.kit.pagination import PageParams, page_of
from saassy.kit.security import token_digest
from saassy.kit.time import utcnow
from saassy.models import ApiKey, ApiKeyScope, Role

KEY_BYTES = 32
VISIBLE_PREFIX_LENGTH = 12


class ApiKeyNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("API key")


class ApiKeyNotRotatable(Conflict):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, code=code)


def ensure_key_manager(principal: Principal, organization: ActiveOrganization) -> None:
    """Keys are managed by signed-in users with the admin role or higher, never by a key."""
    if principal.user_id is None:
        raise Forbidden(
            "Managing API keys needs a signed-in user, not an API key.", code="user_required"
        )
    if organization.role.rank < Role.admin.rank:
        raise Forbidden("Managing API keys needs the admin role or higher.", code="role_required")


def generate_key() -> str:
    """`sk_` and 256 random bits, URL-safe."""
    return API_KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


async def create_api_key(
    session: AsyncSession,
    principal: Principal,
    organization_id: uuid.UUID,
    name: str,
    *,
    scopes: Iterable[ApiKeyScope] = (ApiKeyScope.admin,),
    expires_at: datetime | None = None,
    origin: Origin,
) -> tuple[ApiKey, str]:
    """A new key for the organization and the key itself, which is never stored."""
    await require_verified_email(session, principal.user_id)
    api_key, key = await _new_key(
        session, principal, organization_id, name, " ".join(scopes), expires_at
    )
    await _audit(session, AuditAction.api_key_created, principal, origin, api_key)
    return api_key, key


async def _new_key(
    session: AsyncSession,
    principal: Principal,
    organization_id: uuid.UUID,
    name: str,
    scopes: str,
    expires_at: datetime | None,
) -> tuple[ApiKey, str]:
    key = generate_key()
    api_key = await ApiKeyRepository(session).add(
        ApiKey(
            organization_id=organization_id,
            created_by_user_id=principal.user_id,
            name=name,
            prefix=key[:VISIBLE_PREFIX_LENGTH],
            key_hash=token_digest(key),
            scopes=scopes,
            expires_at=expires_at,
        )
    )
    return api_key, key


async def rotate_api_key(
    session: AsyncSession,
    principal: Principal,
    organization: ActiveOrganization,
    key_id: uuid.UUID,
    overlap: timedelta,
    *,
    origin: Origin,
) -> tuple[ApiKey, str, ApiKey]:
    """A new key with the old one's name, scopes and organization (and, if it had an expiry,
    the same lifetime from now); the old key keeps working for `overlap`, then is refused.
    Returns the new key, the key itself (never stored) and the old key."""
    # As in revocation: another tenant's key is a 404 for anyone; the lock makes a second
    # rotation at the same time find the first's replacement and refuse.
    old = await ApiKeyRepository(session).get_in_organization(
        key_id, organization.id, principal.scope, lock=True
    )
    if old is None:
        raise ApiKeyNotFound()
    ensure_key_manager(principal, organization)
    await require_verified_email(session, principal.user_id)
    now = utcnow()
    if old.replaced_by_id is not None or old.rotated_at is not None:
        raise ApiKeyNotRotatable(
            "This key was already rotated; rotate the key that replaced it.",
            "api_key_already_rotated",
        )
    if old.revoked_at is not None or key_expired(old.expires_at, now):
        raise ApiKeyNotRotatable(
            "Only a working key can be rotated; this one is revoked or expired. "
            "Create a new key instead.",
            "api_key_not_active",
        )
    # Capped: a key made before expiries were, with one centuries away, rotates like any other.
    lifetime = (
        min(old.expires_at - old.created_at, MAX_KEY_LIFETIME)
        if old.expires_at is not None
        else None
    )
    new, key = await _new_key(
        session,
        principal,
        old.organization_id,
        old.name,
        old.scopes,
        now + lifetime if lifetime is not None else None,
    )
    overlap_ends = now + overlap
    old.expires_at = min(old.expires_at, overlap_ends) if old.expires_at else overlap_ends
    old.rotated_at = now
    old.replaced_by_id = new.id
    after_commit(session, AccessChanged())
    await record(
        session,
        AuditAction.api_key_rotated,
        Actor.of(principal, origin),
        organization_id=old.organization_id,
        target=Target(TargetType.api_key, old.id),
        details={
            "name": old.name,
            "replaced_by": str(new.id),
            "overlap_s": int(overlap.total_seconds()),
        },
    )
    await session.flush()
    return new, key, old


async def _audit(
    session: AsyncSession,
    action: AuditAction,
    principal: Principal,
    origin: Origin,
    api_key: ApiKey,
) -> None:
    """The key's id and name identify it in the log; no part of the key goes in."""
    await record(
        session,
        action,
        Actor.of(principal, origin),
        organization_id=api_key.organization_id,
        target=Target(TargetType.api_key, api_key.id),
        details={"name": api_key.name},
    )


async def list_api_keys(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, params: PageParams
) -> tuple[list[ApiKey], str | None]:
    """The organization's keys, revoked ones included, oldest first."""
    rows = await ApiKeyRepository(session).list_for_organization(
        organization_id, principal.scope, params
    )
    return page_of(rows, params, lambda key: (key.created_at, key.id))


async def creators_of(session: AsyncSession, keys: list[ApiKey]) -> dict[uuid.UUID, str]:
    """Who made each key: the creator's e-mail by key id, for the keys whose creator exists."""
    emails = await ApiKeyRepository(session).creator_emails(keys)
    return {
        key.id: emails[key.created_by_user_id]
        for key in keys
        if key.created_by_user_id is not None and key.created_by_user_id in emails
    }


async def revoke_api_key(
    session: AsyncSession,
    principal: Principal,
    organization: ActiveOrganization,
    key_id: uuid.UUID,
    *,
    origin: Origin,
) -> None:
    """Revoke a key; the next request made with it is refused. Revoking twice is harmless."""
    # Looked up before the permission check: another tenant's key is a 404 for any caller.
    # Locked: of two revocations at once, the second sees the first's and records nothing.
    api_key = await ApiKeyRepository(session).get_in_organization(
        key_id, organization.id, principal.scope, lock=True
    )
    if api_key is None:
        raise ApiKeyNotFound()
    ensure_key_manager(principal, organization)
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
        after_commit(session, AccessChanged())
        await _audit(session, AuditAction.api_key_revoked, principal, origin, api_key)
        await session.flush()
