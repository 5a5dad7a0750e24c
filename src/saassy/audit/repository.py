"""SQL for the audit log: add (through the session), page, and prune by age. No statement
here changes an entry: the log is append-only, only retention removes from it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, delete, or_, select

from saassy.audit.actions import AuditAction
from saassy.auth.principal import OrganizationScope
from saassy.kit.pagination import PageParams, keyset
from saassy.kit.repository import RepositoryBase
from saassy.models import ApiKey, AuditEntry, User


@dataclass(frozen=True)
class AuditFilter:
    actions: frozenset[AuditAction] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    # About one person (staff): failed sign-ins naming their address's hash, and what their
    # user did or had done to them.
    email_hash: str | None = None
    user_id: uuid.UUID | None = None

    def apply(self, statement: Select[AuditEntry]) -> Select[AuditEntry]:
        if self.email_hash is not None:
            about = [AuditEntry.email_hash == self.email_hash]
            if self.user_id is not None:
                about.append(AuditEntry.actor_user_id == self.user_id)
                about.append(
                    and_(AuditEntry.target_type == "user", AuditEntry.target_id == self.user_id)
                )
            statement = statement.where(or_(*about))
        if self.actions:
            statement = statement.where(AuditEntry.action.in_([a.value for a in self.actions]))
        if self.since is not None:
            statement = statement.where(AuditEntry.created_at >= self.since)
        if self.until is not None:
            statement = statement.where(AuditEntry.created_at < self.until)
        return statement


class AuditRepository(RepositoryBase[AuditEntry]):
    model = AuditEntry

    async def page_of_organization(
        self,
        organization_id: uuid.UUID,
        scope: OrganizationScope,
        params: PageParams,
        where: AuditFilter,
    ) -> Sequence[AuditEntry]:
        if organization_id not in scope:
            return []
        statement = where.apply(self.select().where(AuditEntry.organization_id == organization_id))
        return await self.all(
            keyset(statement, params, AuditEntry.created_at, AuditEntry.id, newest_first=True)
        )

    async def page_of_all(
        self, params: PageParams, where: AuditFilter, organization_id: uuid.UUID | None = None
    ) -> Sequence[AuditEntry]:
        """Across every organization, on purpose (staff)."""
        statement = where.apply(self.select())
        if organization_id is not None:
            statement = statement.where(AuditEntry.organization_id == organization_id)
        return await self.all(
            keyset(statement, params, AuditEntry.created_at, AuditEntry.id, newest_first=True)
        )

    async def delete_older_than(self, before: datetime, batch: int) -> int:
        """Retention: up to `batch` of the oldest entries before `before`, in one statement."""
        oldest = (
            select(AuditEntry.id)
            .where(AuditEntry.created_at < before)
            .order_by(AuditEntry.created_at)
            .limit(batch)
        )
        result = await self.session.execute(
            delete(AuditEntry)
            .where(AuditEntry.id.in_(oldest.scalar_subquery()))
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def emails_of(self, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The current address of each user a page of entries names (a deleted user has none)."""
        if not user_ids:
            return {}
        rows = await self.session.execute(select(User.id, User.email).where(User.id.in_(user_ids)))
        return {user_id: email for user_id, email in rows.all()}

    async def key_names_of(self, key_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not key_ids:
            return {}
        rows = await self.session.execute(
            select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(key_ids))
        )
        return {key_id: name for key_id, name in rows.all()}
