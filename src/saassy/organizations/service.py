"""Organizations (the tenants) and their members: who may see, rename, delete and manage whom."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from saassy.accounts.repository import UserRepository
from saassy.audit.actions import AuditAction, TargetType
from saassy.audit.actors import Actor, Origin
from saassy.audit.service import Target, record
from saassy.auth.access_cache import AccessChanged
from saassy.auth.principal import Principal
from saassy.config import Settings
from saassy.kit.after_commit import after_commit
from saassy.kit.pagination import PageParams, page_of
from saassy.kit.time import utcnow
from saassy.models import Membership, Organization, Role
from saassy.organizations.errors import (
    LastOwner,
    MemberNotFound,
    OrganizationNotFound,
    OwnerRequired,
    PersonalOrganization,
    RoleRequired,
    TooManyOrganizations,
)
from saassy.organizations.repository import (
    MembershipRepository,
    OrganizationRepository,
)
from saassy.schedules.service import delete_organization_schedules
from saassy.tasks.service import cancel_organization_tasks
from saassy.vault.service import purge_organization_vault


def caller_role(principal: Principal, organization_id: uuid.UUID) -> Role:
    role = principal.role_in(organization_id)
    if role is None:  # the repositories already answer 404 for organizations out of scope
        raise OrganizationNotFound()
    return role


def require_role(principal: Principal, organization_id: uuid.UUID, minimum: Role) -> Role:
    """The caller's role in the organization, if it is at least `minimum`; else 403."""
    return _at_least(caller_role(principal, organization_id), minimum)


async def get_organization(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, *, lock: bool = False
) -> Organization:
    """An organization the caller belongs to; any other id is 404."""
    organization = await OrganizationRepository(session).get_in_scope(
        organization_id, principal.scope, lock=lock
    )
    if organization is None:
        raise OrganizationNotFound()
    return organization


async def list_organizations(
    session: AsyncSession, principal: Principal, params: PageParams
) -> tuple[list[Organization], str | None]:
    """The caller's live organizations, oldest first."""
    rows = await OrganizationRepository(session).list_in_scope(principal.scope, params)
    return page_of(rows, params, lambda org: (org.created_at, org.id))


async def create_organization(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, name: str
) -> Organization:
    """A new organization on the default plan, owned by its creator, who may own at most
    `settings.organizations_per_user` besides their personal one (409 beyond)."""
    # The user's row locked: two creations at once count one after the other.
    await UserRepository(session).lock(user_id)
    limit = settings.organizations_per_user
    if await MembershipRepository(session).count_owned(user_id) >= limit:
        raise TooManyOrganizations(limit)
    organization = await OrganizationRepository(session).add(
        Organization(
            name=name, personal=False, plan=settings.catalog.default_plan, plan_overrides={}
        )
    )
    await MembershipRepository(session).add(
        Membership(organization_id=organization.id, user_id=user_id, role=Role.owner)
    )
    after_commit(session, AccessChanged())  # its creator's remembered access lacks it
    return organization


async def rename_organization(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, name: str
) -> Organization:
    """Rename an organization (admin or owner)."""
    organization = await get_organization(session, principal, organization_id)
    require_role(principal, organization.id, Role.admin)
    organization.name = name
    await session.flush()
    return organization


async def delete_organization(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID
) -> None:
    """Soft-delete an organization (owner only); a personal organization stays. Its secrets
    are deleted at once (sealed data must not outlive its tenant), and its schedules, so that
    nothing of it runs again."""
    organization = await get_organization(session, principal, organization_id)
    if caller_role(principal, organization.id) is not Role.owner:
        raise OwnerRequired("Only an owner may delete the organization.")
    if organization.personal:
        raise PersonalOrganization("A personal organization cannot be deleted.")
    organization.deleted_at = utcnow()
    after_commit(session, AccessChanged())
    await session.flush()
    await cancel_organization_tasks(session, organization.id)
    await delete_organization_schedules(session, organization.id)
    await purge_organization_vault(session, organization.id)


async def list_members(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, params: PageParams
) -> tuple[list[tuple[Membership, str]], str | None]:
    """The organization's members with their e-mail, in the order they joined."""
    organization = await get_organization(session, principal, organization_id)
    rows = await MembershipRepository(session).list_members(
        organization.id, principal.scope, params
    )
    return page_of(rows, params, lambda row: (row[0].created_at, row[0].id))


async def _locked_member(
    session: AsyncSession, principal: Principal, organization_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[Membership, Role]:
    """The target membership and the caller's current role, read under the organization's lock."""
    # Two owners demoting each other at once must not leave the organization ownerless, and the
    # caller's role is re-read under the lock: it may have changed since the request began.
    organization = await get_organization(session, principal, organization_id, lock=True)
    memberships = MembershipRepository(session)
    membership = await memberships.get_member(organization.id, user_id, principal.scope)
    if membership is None:
        raise MemberNotFound()
    if principal.user_id is None:
        return membership, caller_role(principal, organization.id)
    own = await memberships.get_member(organization.id, principal.user_id, principal.scope)
    if own is None:
        raise OrganizationNotFound()
    return membership, Role(own.role)


def _at_least(role: Role, minimum: Role) -> Role:
    if role.rank < minimum.rank:
        raise RoleRequired(f"This needs the {minimum.value} role or higher.")
    return role


async def _ensure_not_last_owner(session: AsyncSession, membership: Membership) -> None:
    """Refuse to demote or remove an owner unless another owner may still act (one whose own
    deletion is under way, or whose account is disabled, will not). Called under the
    organization's lock (`_locked_member`), which account deletions take too."""
    if Role(membership.role) is not Role.owner:
        return
    others = await MembershipRepository(session).count_other_live_owners(
        membership.organization_id, membership.user_id
    )
    if others == 0:
        raise LastOwner(
            "The organization's last owner cannot be demoted or removed; "
            "make someone else an owner first."
        )


async def change_member_role(
    session: AsyncSession,
    principal: Principal,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    role: Role,
    *,
    origin: Origin,
) -> tuple[Membership, str]:
    """Change a member's role (admin+); only an owner grants or takes away ownership."""
    membership, caller = await _locked_member(session, principal, organization_id, user_id)
    _at_least(caller, Role.admin)
    current = Role(membership.role)
    if Role.owner in (current, role) and caller is not Role.owner:
        raise OwnerRequired("Only an owner may grant or take away the owner role.", field="role")
    if role is not current:
        if current is Role.owner:
            await _ensure_not_last_owner(session, membership)
        membership.role = role
        after_commit(session, AccessChanged())
        await record(
            session,
            AuditAction.member_role_changed,
            Actor.of(principal, origin),
            organization_id=membership.organization_id,
            target=Target(TargetType.user, membership.user_id),
            details={"from_role": current.value, "to_role": role.value},
        )
        await session.flush()
    return membership, await _email_of(session, membership)


async def remove_member(
    session: AsyncSession,
    principal: Principal,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    origin: Origin,
) -> None:
    """Remove a member (admin+), or leave: anyone may remove themself, except the last owner."""
    membership, caller = await _locked_member(session, principal, organization_id, user_id)
    if principal.user_id != membership.user_id:
        _at_least(caller, Role.admin)
        if Role(membership.role) is Role.owner and caller is not Role.owner:
            raise OwnerRequired("Only an owner may remove an owner.")
    await _ensure_not_last_owner(session, membership)
    await record(
        session,
        AuditAction.member_removed,
        Actor.of(principal, origin),
        organization_id=membership.organization_id,
        target=Target(TargetType.user, membership.user_id),
        details={"role": Role(membership.role).value, "left": principal.user_id == user_id},
    )
    await MembershipRepository(session).delete(membership)
    after_commit(session, AccessChanged())


async def _email_of(session: AsyncSession, membership: Membership) -> str:
    user = await UserRepository(session).get(membership.user_id)
    assert user is not None  # memberships cascade with their user
    return user.email
