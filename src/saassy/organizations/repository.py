"""SQL for organizations, memberships and invitations."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, select

from saassy.auth.principal import OrganizationScope
from saassy.kit.pagination import PageParams, keyset
from saassy.kit.repository import RepositoryBase, table_of
from saassy.models import Invitation, Membership, Organization, Role, User


@dataclass(frozen=True)
class LivePlan:
    """A live organization's plan and its contract overrides (None: none)."""

    plan: str
    plan_overrides: Mapping[str, Any] | None


_organizations = table_of(Organization)
# Built once: a submission runs it (building a statement per call costs more than running it).
_LIVE_PLAN = (
    select(_organizations.c.plan, _organizations.c.plan_overrides)
    .where(_organizations.c.id == bindparam("id"), _organizations.c.deleted_at.is_(None))
    .with_for_update(read=True)
)


class OrganizationRepository(RepositoryBase[Organization]):
    model = Organization

    async def hold_live(self, organization_id: uuid.UUID) -> bool:
        """Whether it exists, undeleted; held FOR SHARE (PostgreSQL) until the commit, so a
        deletion waits for this transaction and then sees what it wrote."""
        return await self.hold_live_plan(organization_id) is not None

    async def hold_live_plan(self, organization_id: uuid.UUID) -> LivePlan | None:
        """Its plan as it is now, if it exists undeleted; held as `hold_live` holds it."""
        row = (await self.session.execute(_LIVE_PLAN, {"id": organization_id})).one_or_none()
        return None if row is None else LivePlan(row[0], row[1] or None)

    async def get_in_scope(
        self, organization_id: uuid.UUID, scope: OrganizationScope, *, lock: bool = False
    ) -> Organization | None:
        """A live organization the caller may reach; `lock` serializes changes to its owners."""
        if organization_id not in scope:
            return None
        statement = self.select().where(
            Organization.id == organization_id, Organization.deleted_at.is_(None)
        )
        if lock:
            statement = statement.with_for_update()
        return await self.one_or_none(statement)

    async def get_live(
        self, organization_id: uuid.UUID, *, lock: bool = False
    ) -> Organization | None:
        """A live organization by id, outside any caller's scope (accepting an invitation)."""
        statement = self.select().where(
            Organization.id == organization_id, Organization.deleted_at.is_(None)
        )
        return await self.one_or_none(statement.with_for_update() if lock else statement)

    async def all_in_scope(self, scope: OrganizationScope) -> Sequence[Organization]:
        """Every live organization the caller may reach, in one query (in no set order)."""
        if not scope.ids:
            return []
        return await self.all(
            self.select().where(Organization.id.in_(scope.ids), Organization.deleted_at.is_(None))
        )

    async def list_in_scope(
        self, scope: OrganizationScope, params: PageParams
    ) -> Sequence[Organization]:
        statement = self.select().where(
            Organization.id.in_(scope.ids), Organization.deleted_at.is_(None)
        )
        return await self.all(keyset(statement, params, Organization.created_at, Organization.id))


class MembershipRepository(RepositoryBase[Membership]):
    model = Membership

    async def roles_of_user(
        self, user_id: uuid.UUID
    ) -> Sequence[tuple[uuid.UUID, Role, str, bool]]:
        """(organization id, role, plan, personal) for every live organization of the user."""
        rows = await self.session.execute(
            select(
                Membership.organization_id,
                Membership.role,
                Organization.plan,
                Organization.personal,
            )
            .join(Organization, Organization.id == Membership.organization_id)
            .where(Membership.user_id == user_id, Organization.deleted_at.is_(None))
            .order_by(Membership.created_at)
        )
        return [(org_id, Role(role), plan, personal) for org_id, role, plan, personal in rows.all()]

    async def count_owned(self, user_id: uuid.UUID) -> int:
        """The live organizations, other than their personal one, that the user owns."""
        statement = (
            select(func.count())
            .select_from(Membership)
            .join(Organization, Organization.id == Membership.organization_id)
            .where(
                Membership.user_id == user_id,
                Membership.role == Role.owner,
                Organization.personal.is_(False),
                Organization.deleted_at.is_(None),
            )
        )
        return int(await self.session.scalar(statement) or 0)

    async def get_member(
        self, organization_id: uuid.UUID, user_id: uuid.UUID, scope: OrganizationScope
    ) -> Membership | None:
        if organization_id not in scope:
            return None
        return await self.one_or_none(
            self.select().where(
                Membership.organization_id == organization_id, Membership.user_id == user_id
            )
        )

    async def list_members(
        self, organization_id: uuid.UUID, scope: OrganizationScope, params: PageParams
    ) -> Sequence[tuple[Membership, str]]:
        """(membership, e-mail) of the organization's members, in the order they joined."""
        if organization_id not in scope:
            return []
        statement = (
            select(Membership, User.email)
            .join(User, User.id == Membership.user_id)
            .where(Membership.organization_id == organization_id)
        )
        rows = await self.session.execute(
            keyset(statement, params, Membership.created_at, Membership.id)
        )
        return [(membership, email) for membership, email in rows.all()]

    async def count_other_live_owners(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> int:
        """The organization's owners besides the user who may still act: an owner whose own
        deletion is under way, or whose account is disabled, does not count."""
        count = await self.session.scalar(
            select(func.count())
            .select_from(Membership)
            .join(User, User.id == Membership.user_id)
            .where(
                Membership.organization_id == organization_id,
                Membership.role == Role.owner,
                Membership.user_id != user_id,
                User.deletion_requested_at.is_(None),
                User.disabled_at.is_(None),
            )
        )
        return count or 0

    async def has_member_with_email(self, organization_id: uuid.UUID, email: str) -> bool:
        found = await self.session.scalar(
            select(Membership.id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.organization_id == organization_id, User.email == email.lower())
        )
        return found is not None


class InvitationRepository(RepositoryBase[Invitation]):
    model = Invitation

    def _pending(self, organization_id: uuid.UUID, now: datetime) -> Select[Invitation]:
        return self.select().where(
            Invitation.organization_id == organization_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        )

    async def get_in_organization(
        self, invitation_id: uuid.UUID, organization_id: uuid.UUID, scope: OrganizationScope
    ) -> Invitation | None:
        if organization_id not in scope:
            return None
        return await self.one_or_none(
            self.select().where(
                Invitation.id == invitation_id, Invitation.organization_id == organization_id
            )
        )

    async def list_pending(
        self,
        organization_id: uuid.UUID,
        scope: OrganizationScope,
        now: datetime,
        params: PageParams,
    ) -> Sequence[Invitation]:
        if organization_id not in scope:
            return []
        statement = self._pending(organization_id, now)
        return await self.all(keyset(statement, params, Invitation.created_at, Invitation.id))

    async def pending_for_email(
        self, organization_id: uuid.UUID, email: str, now: datetime
    ) -> Sequence[Invitation]:
        return await self.all(
            self._pending(organization_id, now).where(Invitation.email == email.lower())
        )

    async def get_by_digest(self, token_hash: str) -> Invitation | None:
        """The invitation a token names, read only (the acceptance page shows it)."""
        return await self.one_or_none(self.select().where(Invitation.token_hash == token_hash))

    async def get_by_digest_for_update(self, token_hash: str) -> Invitation | None:
        """The invitation a token names, locked so two accepts of one token cannot both win."""
        return await self.one_or_none(
            self.select().where(Invitation.token_hash == token_hash).with_for_update()
        )
