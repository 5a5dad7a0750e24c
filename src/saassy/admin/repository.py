"""SQL for staff: reads across every tenant, on purpose."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_

from saassy.kit.pagination import PageParams
from saassy.kit.repository import RepositoryBase
from saassy.kit.time import as_utc
from saassy.models import Organization


class StaffOrganizationRepository(RepositoryBase[Organization]):
    model = Organization

    async def page(self, params: PageParams, plan: str | None = None) -> Sequence[Organization]:
        """Newest first, one more than asked so the caller knows whether a next page exists."""
        statement = self.select().order_by(Organization.created_at.desc(), Organization.id.desc())
        if plan is not None:
            statement = statement.where(Organization.plan == plan)
        if params.after is not None:
            created_at, id = params.after
            created_at = as_utc(created_at)  # a hand-made cursor may carry a naive time
            statement = statement.where(
                or_(
                    Organization.created_at < created_at,
                    and_(Organization.created_at == created_at, Organization.id < id),
                )
            )
        return await self.all(statement.limit(params.limit + 1))
