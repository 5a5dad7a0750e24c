"""SQL that authenticates a request: one statement per credential, no ORM objects.

Every authenticated request runs one of these first, so each reads, in one round trip,
everything the request's authorization and plan need: the caller, their organizations'
roles, plans and plan overrides. The statements are built once, with bound parameters:
building and hashing a statement per request costs more CPU than running it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.kit.repository import table_of
from saassy.models import ApiKey, Membership, Organization, Role, User


@dataclass(frozen=True)
class OrganizationGrant:
    """A live organization the caller belongs to, with their role and its plan."""

    organization_id: uuid.UUID
    role: Role
    plan: str
    plan_overrides: Mapping[str, Any] | None
    personal: bool


@dataclass(frozen=True)
class KeyHolder:
    """An API key and the organization it belongs to."""

    key_id: uuid.UUID
    revoked_at: datetime | None
    expires_at: datetime | None
    rotated_at: datetime | None
    scopes: str
    last_used_at: datetime | None
    organization_id: uuid.UUID
    plan: str
    plan_overrides: Mapping[str, Any] | None
    organization_deleted_at: datetime | None


@dataclass(frozen=True)
class UserAccess:
    """A user's standing and their live organizations, oldest membership first."""

    is_staff: bool
    disabled_at: datetime | None
    grants: Sequence[OrganizationGrant]


# On the tables, not the mapped classes: a Core select skips the ORM's work on every call.
_api_keys = table_of(ApiKey)
_memberships = table_of(Membership)
_organizations = table_of(Organization)
_users = table_of(User)

_KEY_HOLDER = (
    select(
        _api_keys.c.id,
        _api_keys.c.revoked_at,
        _api_keys.c.expires_at,
        _api_keys.c.rotated_at,
        _api_keys.c.scopes,
        _api_keys.c.last_used_at,
        _organizations.c.id,
        _organizations.c.plan,
        _organizations.c.plan_overrides,
        _organizations.c.deleted_at,
    )
    .select_from(_api_keys.join(_organizations, _organizations.c.id == _api_keys.c.organization_id))
    .where(_api_keys.c.key_hash == bindparam("key_hash"))
)

# Outer joins: a user without organizations is still found. A membership of a deleted
# organization comes back without the organization and is left out.
_USER_ACCESS = (
    select(
        _users.c.is_staff,
        _users.c.disabled_at,
        _organizations.c.id,
        _memberships.c.role,
        _organizations.c.plan,
        _organizations.c.plan_overrides,
        _organizations.c.personal,
    )
    .select_from(
        _users.outerjoin(_memberships, _memberships.c.user_id == _users.c.id).outerjoin(
            _organizations,
            (_organizations.c.id == _memberships.c.organization_id)
            & _organizations.c.deleted_at.is_(None),
        )
    )
    .where(_users.c.id == bindparam("user_id"))
    .order_by(_memberships.c.created_at)
)


class AuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def key_holder(self, key_hash: str) -> KeyHolder | None:
        result = await self.session.execute(_KEY_HOLDER, {"key_hash": key_hash})
        row = result.one_or_none()
        return None if row is None else KeyHolder(*tuple(row))

    async def record_key_use(self, key_id: uuid.UUID, now: datetime) -> None:
        await self.session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )

    async def user_access(self, user_id: uuid.UUID) -> UserAccess | None:
        rows = (await self.session.execute(_USER_ACCESS, {"user_id": user_id})).all()
        if not rows:
            return None
        grants = [
            OrganizationGrant(org_id, Role(role), plan, overrides, personal)
            for _, _, org_id, role, plan, overrides, personal in rows
            if org_id is not None
        ]
        return UserAccess(is_staff=rows[0][0], disabled_at=rows[0][1], grants=grants)
