"""Writing entries (in the unit of work of the action they record) and reading them."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.repository import UserRepository
from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor
from saassy.audit.repository import AuditFilter, AuditRepository
from saassy.auth.principal import OrganizationScope
from saassy.kit.pagination import PageParams, page_of
from saassy.kit.security import derived_key
from saassy.models import AuditEntry

Detail = str | int | bool | None | list[str]

# Details say what changed (a role, a plan, a secret's name), never what a secret is: a key
# with one of these names is a programming error, refused before anything is written.
FORBIDDEN_DETAIL_WORDS = ("value", "password", "token", "secret", "key", "email", "hash")
MAX_DETAIL_LENGTH = 200


@dataclass(frozen=True)
class Target:
    type: TargetType
    id: uuid.UUID


def email_hash(signing_secret: str, email: str) -> str:
    """The HMAC-SHA256 of an address (lower-cased), keyed for the audit log alone."""
    key = derived_key(signing_secret, "saassy audit e-mail")
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def _checked(details: Mapping[str, Detail]) -> dict[str, Detail]:
    for name, value in details.items():
        if any(word in name.lower() for word in FORBIDDEN_DETAIL_WORDS):
            raise ValueError(f"audit detail {name!r} may carry a secret or an address")
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and len(text) > MAX_DETAIL_LENGTH for text in texts):
            raise ValueError(f"audit detail {name!r} is too long")
    return dict(details)


async def record(
    session: AsyncSession,
    action: AuditAction,
    actor: Actor,
    *,
    organization_id: uuid.UUID | None = None,
    target: Target | None = None,
    details: Mapping[str, Detail] | None = None,
    hashed_email: str | None = None,
) -> AuditEntry:
    """Add one entry to the caller's unit of work (flushed with it, committed with it)."""
    entry = AuditEntry(
        actor_user_id=actor.user_id,
        actor_api_key_id=actor.api_key_id,
        by_staff=actor.staff,
        organization_id=organization_id,
        action=action.value,
        target_type=target.type.value if target else None,
        target_id=target.id if target else None,
        ip=actor.origin.ip,
        user_agent=actor.origin.user_agent,
        email_hash=hashed_email,
        details=_checked(details or {}),
    )
    session.add(entry)
    return entry


async def about_address(
    session: AsyncSession, signing_secret: str, email: str, where: AuditFilter
) -> AuditFilter:
    """`where`, narrowed to one person: failed sign-ins for the address, and whatever the
    account that has it (if one does) did or had done to it."""
    user = await UserRepository(session).get_by_email(email.strip().lower())
    return replace(
        where,
        email_hash=email_hash(signing_secret, email),
        user_id=user.id if user is not None else None,
    )


async def organization_log(
    session: AsyncSession,
    scope: OrganizationScope,
    organization_id: uuid.UUID,
    params: PageParams,
    where: AuditFilter,
) -> tuple[list[AuditEntry], str | None]:
    """An organization's entries, newest first (the caller checked the owner role)."""
    rows = await AuditRepository(session).page_of_organization(
        organization_id, scope, params, where
    )
    return page_of(rows, params, lambda entry: (entry.created_at, entry.id))


async def staff_log(
    session: AsyncSession,
    params: PageParams,
    where: AuditFilter,
    organization_id: uuid.UUID | None = None,
) -> tuple[list[AuditEntry], str | None]:
    """Every entry, newest first (staff)."""
    rows = await AuditRepository(session).page_of_all(params, where, organization_id)
    return page_of(rows, params, lambda entry: (entry.created_at, entry.id))


async def prune(session: AsyncSession, before: datetime, batch: int) -> int:
    """Delete up to `batch` entries older than `before`; how many."""
    return await AuditRepository(session).delete_older_than(before, batch)
