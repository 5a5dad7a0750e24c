"""SQL for organizations, memberships and invitations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select

from saassy.auth.principal import OrganizationScope
from saassy.kit.repository import RepositoryBase
from saassy.models import Membership, Organization, Role


class OrganizationRepository(RepositoryBase[Organization]):
    model = Organization

    async def get_in_scope(
        self, organization_id: uuid.UUID, scope: OrganizationScope
    ) -> Organization | None:
        if organization_id not in scope:
            return None
        return await self.one_or_none(
            self.select().where(
                Organization.id == organization_id, Organization.deleted_at.is_(None)
            )
        )


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
