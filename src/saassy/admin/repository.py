"""SQL for staff: reads across every tenant, on purpose. Every read is bounded: a page, or
a batch keyed by the ids of a page."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import and_, or_, select

from saassy.kit.pagination import PageParams, keyset
from saassy.kit.repository import RepositoryBase
from saassy.kit.time import as_utc
from saassy.models import Membership, Organization, QuotaCounter, Role, Task, TaskStatus, User


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

    async def search_page(self, params: PageParams, text: str) -> Sequence[Organization]:
        """`page` of the organizations whose name, or a member's e-mail, contains `text`.

        A substring match cannot use an index; the keyset order and the limit bound the scan.
        """
        members = (
            select(Membership.organization_id)
            .join(User, User.id == Membership.user_id)
            .where(User.email.icontains(text, autoescape=True))
        )
        statement = self.select().where(
            or_(Organization.name.icontains(text, autoescape=True), Organization.id.in_(members))
        )
        return await self.all(
            keyset(statement, params, Organization.created_at, Organization.id, newest_first=True)
        )

    async def owners_of(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
        """The owners' e-mails of each organization, earliest owner first."""
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Membership.organization_id, User.email)
            .join(User, User.id == Membership.user_id)
            .where(Membership.organization_id.in_(ids), Membership.role == Role.owner)
            .order_by(Membership.created_at)
        )
        found: dict[uuid.UUID, list[str]] = {}
        for organization_id, email in rows.all():
            found.setdefault(organization_id, []).append(email)
        return found

    async def counters_of(
        self, ids: Sequence[uuid.UUID], metric: str, period_start: date
    ) -> dict[uuid.UUID, int]:
        """One quota counter (e.g. this month's tasks) of each organization."""
        if not ids:
            return {}
        rows = await self.session.execute(
            select(QuotaCounter.organization_id, QuotaCounter.used).where(
                QuotaCounter.organization_id.in_(ids),
                QuotaCounter.metric == metric,
                QuotaCounter.period_start == period_start,
            )
        )
        return {organization_id: used for organization_id, used in rows.all()}

    async def members_of(
        self, organization_id: uuid.UUID, most: int = 100
    ) -> Sequence[tuple[str, Role, bool]]:
        """(e-mail, role, disabled) of the organization's members, earliest first."""
        rows = await self.session.execute(
            select(User.email, Membership.role, User.disabled_at.is_not(None))
            .join(User, User.id == Membership.user_id)
            .where(Membership.organization_id == organization_id)
            .order_by(Membership.created_at)
            .limit(most)
        )
        return [(email, Role(role), bool(disabled)) for email, role, disabled in rows.all()]

    async def names_of(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Organization.id, Organization.name).where(Organization.id.in_(ids))
        )
        return {id: name for id, name in rows.all()}


class StaffTaskRepository(RepositoryBase[Task]):
    model = Task

    async def page(
        self,
        params: PageParams,
        organization_id: uuid.UUID | None = None,
        status: TaskStatus | None = None,
        task_type: str | None = None,
    ) -> Sequence[Task]:
        """Tasks of every tenant, newest first, one more than asked."""
        statement = self.select()
        if organization_id is not None:
            statement = statement.where(Task.organization_id == organization_id)
        if status is not None:
            statement = statement.where(Task.status == status)
        if task_type is not None:
            statement = statement.where(Task.type == task_type)
        return await self.all(
            keyset(statement, params, Task.created_at, Task.id, newest_first=True)
        )
