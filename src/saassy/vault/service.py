"""Tenant secrets: members read their names, admins and owners write them, tasks receive them.

Values are write-only through the API: they are sealed on the way in (vault/keys.py) and opened
only for the engine, for a task of the same organization whose type declares them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor, Origin
from saassy.audit.service import Target, record
from saassy.auth.principal import ActiveOrganization, OrganizationScope, Principal
from saassy.kit.errors import NotFound
from saassy.kit.pagination import PageParams, page_of
from saassy.kit.time import utcnow
from saassy.models import Role, VaultItem, VaultKind
from saassy.organizations.repository import OrganizationRepository
from saassy.vault.errors import (
    SecretMissing,
    SecretNotFound,
    SecretWriterRequired,
    TooManySecrets,
    VaultItemUnreadable,
)
from saassy.vault.keys import KeyRing, SealBroken
from saassy.vault.repository import VaultRepository

SECRET = VaultKind.secret
# Values are up to 64 KiB each: a bound on what one organization can make the database hold.
MAX_SECRETS_PER_ORGANIZATION = 100


def ensure_secret_writer(organization: ActiveOrganization) -> None:
    """Storing and deleting secrets needs the admin role or higher (an API key is a member)."""
    if organization.role.rank < Role.admin.rank:
        raise SecretWriterRequired("Storing or deleting secrets needs the admin role or higher.")


async def put_secret(
    session: AsyncSession,
    keyring: KeyRing,
    principal: Principal,
    organization: ActiveOrganization,
    name: str,
    value: str,
    *,
    origin: Origin,
) -> tuple[VaultItem, bool]:
    """Store or replace a secret; (its row, whether it was created). The audit entry names
    the secret; its value goes nowhere but the sealed column."""
    ensure_secret_writer(organization)
    # An organization deleted since authentication must not get a secret its deletion never saw.
    if not await OrganizationRepository(session).hold_live(organization.id):
        raise NotFound("Organization")
    vault = VaultRepository(session)
    sealed = keyring.seal(organization.id, SECRET, name, value)
    item = await vault.get_named(organization.id, principal.scope, SECRET, name, lock=True)
    if item is None:
        if await vault.count_kind(organization.id, SECRET) >= MAX_SECRETS_PER_ORGANIZATION:
            raise TooManySecrets(MAX_SECRETS_PER_ORGANIZATION)
        try:
            async with session.begin_nested():
                created = await vault.add(
                    VaultItem(
                        organization_id=organization.id, kind=SECRET, name=name, sealed=sealed
                    )
                )
            await _audit(session, AuditAction.secret_set, principal, origin, created, True)
            return created, True
        except IntegrityError:
            # A concurrent request stored the same name first: this one replaces it.
            item = await vault.get_named(organization.id, principal.scope, SECRET, name, lock=True)
            if item is None:
                raise
    item.sealed = sealed
    item.updated_at = utcnow()
    await _audit(session, AuditAction.secret_set, principal, origin, item, False)
    await session.flush()
    return item, False


async def _audit(
    session: AsyncSession,
    action: AuditAction,
    principal: Principal,
    origin: Origin,
    item: VaultItem,
    created: bool | None = None,
) -> None:
    details: dict[str, str | bool] = {"name": item.name}
    if created is not None:
        details["created"] = created
    await record(
        session,
        action,
        Actor.of(principal, origin),
        organization_id=item.organization_id,
        target=Target(TargetType.secret, item.id),
        details=details,
    )


async def list_secrets(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, params: PageParams
) -> tuple[list[VaultItem], str | None]:
    """The organization's secrets (names and times), oldest first."""
    rows = await VaultRepository(session).list_kind(
        organization_id, principal.scope, SECRET, params
    )
    return page_of(rows, params, lambda item: (item.created_at, item.id))


async def get_secret(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, name: str
) -> VaultItem:
    """One secret of the organization by name; any other name is a 404."""
    item = await VaultRepository(session).get_named(organization_id, principal.scope, SECRET, name)
    if item is None:
        raise SecretNotFound()
    return item


async def delete_secret(
    session: AsyncSession,
    principal: Principal,
    organization: ActiveOrganization,
    name: str,
    *,
    origin: Origin,
) -> None:
    """Delete a secret (admin+); tasks admitted later that need it are refused."""
    # Looked up before the permission check, as an API key's own organization lacking the name
    # is a 404 for any caller. Locked: of two deletions at once, the second finds nothing (404)
    # rather than recording a second deletion.
    item = await VaultRepository(session).get_named(
        organization.id, principal.scope, SECRET, name, lock=True
    )
    if item is None:
        raise SecretNotFound()
    ensure_secret_writer(organization)
    await _audit(session, AuditAction.secret_deleted, principal, origin, item)
    await VaultRepository(session).delete(item)


async def require_secrets(
    session: AsyncSession,
    scope: OrganizationScope,
    organization_id: uuid.UUID,
    names: Sequence[str],
    *,
    task_type: str,
) -> None:
    """Admission: every secret a task type declares is stored (one query); else 422."""
    if not names:
        return
    present = await VaultRepository(session).names_present(organization_id, scope, SECRET, names)
    if missing := [name for name in names if name not in present]:
        raise SecretMissing(missing, task_type)


async def open_secrets(
    session: AsyncSession, keyring: KeyRing, organization_id: uuid.UUID, names: Sequence[str]
) -> dict[str, str]:
    """The values of `names` for a task of this organization; SecretMissing names the first
    one it lacks (deleted since admission), VaultItemUnreadable one no key opens."""
    if not names:
        return {}
    scope = OrganizationScope(frozenset({organization_id}))
    sealed = await VaultRepository(session).sealed_named(organization_id, scope, SECRET, names)
    if missing := [name for name in names if name not in sealed]:
        raise SecretMissing(missing)
    values: dict[str, str] = {}
    for name in names:
        try:
            values[name] = keyring.open(organization_id, SECRET, name, sealed[name])
        except SealBroken as exc:
            raise VaultItemUnreadable(organization_id, SECRET, name, str(exc)) from None
    # For the customer's list ("last used"); the caller commits it with its unit of work.
    await VaultRepository(session).mark_used(organization_id, SECRET, names, utcnow())
    return values


async def purge_organization_vault(session: AsyncSession, organization_id: uuid.UUID) -> int:
    """The organization is being deleted: its sealed data goes at once; how many items."""
    return await VaultRepository(session).delete_of_organization(organization_id)
