"""SQL of account deletion: what the request marks, and what the eraser job removes."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, Table, and_, delete, func, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.models import (
    ApiKey,
    AttemptStatus,
    AuditEntry,
    BillingSubscription,
    DataExport,
    ExportStatus,
    Invitation,
    MagicLink,
    Membership,
    NoticeSent,
    Organization,
    OutboxEmail,
    PlanChange,
    Role,
    Task,
    TaskAttempt,
    TaskStatus,
    User,
    WebhookAttempt,
    WebhookMessage,
)
from saassy.models.base import Base
from saassy.models.tasks import TERMINAL_STATUSES


class Share(NamedTuple):
    """The user's place in one organization."""

    organization_id: uuid.UUID
    role: Role
    members: int  # every member, the user included
    other_live_members: int  # members besides the user who may still act (see `live_user`)
    other_live_owners: int  # and of those, the owners


class ErasureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # --- the request ---------------------------------------------------------------------

    async def lock_organizations_of(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """Lock the user's organizations (PostgreSQL: FOR UPDATE, in id order so that two
        lockers never wait for each other), deleted ones included. Changes to their owners take
        the same lock: what is counted next stays true until the commit."""
        theirs = select(Membership.organization_id).where(Membership.user_id == user_id)
        rows = await self.session.scalars(
            select(Organization.id)
            .where(Organization.id.in_(theirs))
            .order_by(Organization.id)
            .with_for_update()
        )
        return list(rows)

    async def memberships_of(self, user_id: uuid.UUID) -> Sequence[Share]:
        """The user's place in each of their organizations, deleted ones included (a
        soft-deleted organization still holds their data)."""
        mine = await self.session.execute(
            select(Membership.organization_id, Membership.role).where(Membership.user_id == user_id)
        )
        rows = mine.all()
        ids = [org_id for org_id, _ in rows]
        if not ids:
            return []
        other_live = and_(Membership.user_id != user_id, live_user())
        counts = await self.session.execute(
            select(
                Membership.organization_id,
                func.count(),
                func.count().filter(other_live),
                func.count().filter(other_live, Membership.role == Role.owner),
            )
            .join(User, User.id == Membership.user_id)
            .where(Membership.organization_id.in_(ids))
            .group_by(Membership.organization_id)
        )
        by_org = {org_id: (members, live, owners) for org_id, members, live, owners in counts}
        return [Share(org_id, Role(role), *by_org[org_id]) for org_id, role in rows]

    async def revoke_keys_of(self, organization_ids: Collection[uuid.UUID], now: datetime) -> None:
        await self.session.execute(
            update(ApiKey)
            .where(ApiKey.organization_id.in_(organization_ids), ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def drop_queued_exports(self, user_id: uuid.UUID) -> None:
        """Exports not yet started are not built for an account being deleted."""
        await self.session.execute(
            update(DataExport)
            .where(DataExport.user_id == user_id, DataExport.status == ExportStatus.queued)
            .values(status=ExportStatus.failed)
        )

    # --- the job ---------------------------------------------------------------------------

    async def requested(
        self, limit: int, after: tuple[datetime, uuid.UUID] | None = None
    ) -> Sequence[tuple[datetime, uuid.UUID]]:
        """(requested at, id) of accounts whose deletion was asked for, oldest request first,
        from after `after` (one that waits must not keep the next ones from their turn)."""
        statement = select(User.deletion_requested_at, User.id).where(
            User.deletion_requested_at.is_not(None)
        )
        if after is not None:
            statement = statement.where(
                tuple_(User.deletion_requested_at, User.id) > tuple_(*after)
            )
        rows = await self.session.execute(
            statement.order_by(User.deletion_requested_at, User.id).limit(limit)
        )
        return [(at, user_id) for at, user_id in rows.all() if at is not None]

    async def user_for_update(self, user_id: uuid.UUID) -> User | None:
        return await self.session.scalar(select(User).where(User.id == user_id).with_for_update())

    async def orphaned_by(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """The organizations the user owns whose other members include someone whose account is
        not being deleted, but no such owner: erasing the user would leave them ownerless."""
        owned = select(Membership.organization_id).where(
            Membership.user_id == user_id, Membership.role == Role.owner
        )
        rows = await self.session.scalars(
            select(Membership.organization_id)
            .join(User, User.id == Membership.user_id)
            .where(
                Membership.organization_id.in_(owned),
                Membership.user_id != user_id,
                live_user(),
            )
            .group_by(Membership.organization_id)
            .having(func.count().filter(Membership.role == Role.owner) == 0)
        )
        return sorted(rows)

    async def sole_member_organizations(self, user_id: uuid.UUID) -> list[uuid.UUID]:
        """The organizations whose only member is the user: they go with the account."""
        theirs = select(Membership.organization_id).where(Membership.user_id == user_id)
        rows = await self.session.execute(
            select(Membership.organization_id)
            .where(Membership.organization_id.in_(theirs))
            .group_by(Membership.organization_id)
            .having(func.count() == 1)
        )
        return sorted(rows.scalars())

    async def exports_being_built(
        self, user_id: uuid.UUID, organization_ids: Collection[uuid.UUID]
    ) -> int:
        """The user's or the erased organizations' exports a builder is writing now."""
        whose = DataExport.user_id == user_id
        if organization_ids:
            whose = whose | DataExport.organization_id.in_(organization_ids)
        found = await self.session.scalar(
            select(func.count())
            .select_from(DataExport)
            .where(whose, DataExport.status == ExportStatus.running)
        )
        return int(found or 0)

    async def unfinished_tasks(self, organization_ids: Collection[uuid.UUID]) -> int:
        """Tasks not yet ended, and attempts still live (an outcome may still store output)."""
        tasks = await self.session.scalar(
            select(func.count())
            .select_from(Task)
            .where(
                Task.organization_id.in_(organization_ids),
                Task.status.not_in([TaskStatus(s) for s in TERMINAL_STATUSES]),
            )
        )
        attempts = await self.session.scalar(
            select(func.count())
            .select_from(TaskAttempt)
            .where(
                TaskAttempt.organization_id.in_(organization_ids),
                TaskAttempt.status.in_([AttemptStatus.dispatched, AttemptStatus.running]),
            )
        )
        return (tasks or 0) + (attempts or 0)

    async def live_subscriptions(self, organization_ids: Collection[uuid.UUID]) -> Sequence[str]:
        rows = await self.session.scalars(
            select(BillingSubscription.stripe_subscription_id).where(
                BillingSubscription.organization_id.in_(organization_ids),
                BillingSubscription.status.not_in(["canceled", "incomplete_expired"]),
            )
        )
        return list(rows)

    async def delete_where(self, table: Table, column: str, values: Collection[object]) -> int:
        """Delete the rows of `table` whose `column` is one of `values`; how many."""
        if not values:
            return 0
        result = await self.session.execute(delete(table).where(table.c[column].in_(values)))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def export_archives(
        self, user_id: uuid.UUID, organization_ids: Collection[uuid.UUID]
    ) -> list[str]:
        """Storage keys of the user's exports and of the erased organizations' exports."""
        whose = DataExport.user_id == user_id
        if organization_ids:
            whose = whose | DataExport.organization_id.in_(organization_ids)
        keys = await self.session.scalars(
            select(DataExport.storage_key).where(whose, DataExport.storage_key.is_not(None))
        )
        return [key for key in keys if key is not None]

    async def delete_notices(
        self, user_id: uuid.UUID, organization_ids: Collection[uuid.UUID]
    ) -> int:
        """Notice counters keyed by the user (task failures) or an erased organization (quota)."""
        prefixes = [f"task_failed:{user_id}:"] + [f"quota:{org}:" for org in organization_ids]
        result = await self.session.execute(
            delete(NoticeSent).where(or_(*(NoticeSent.key.startswith(p) for p in prefixes)))
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def clear_where(self, table: Table, column: str, values: Collection[object]) -> int:
        """Set `column` to NULL where it is one of `values` (the row is someone else's)."""
        if not values:
            return 0
        result = await self.session.execute(
            update(table).where(table.c[column].in_(values)).values({column: None})
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def delete_webhook_attempts(self, organization_ids: Collection[uuid.UUID]) -> int:
        """The delivery attempts of the organizations' messages (they carry no organization)."""
        messages = select(WebhookMessage.id).where(
            WebhookMessage.organization_id.in_(organization_ids)
        )
        result = await self.session.execute(
            delete(WebhookAttempt).where(WebhookAttempt.message_id.in_(messages))
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def delete_magic_links(self, email: str) -> int:
        result = await self.session.execute(
            delete(MagicLink).where(func.lower(MagicLink.email) == email)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def delete_invitations(self, user_id: uuid.UUID, email: str) -> int:
        result = await self.session.execute(
            delete(Invitation).where(
                (func.lower(Invitation.email) == email) | (Invitation.invited_by_user_id == user_id)
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def outbox_page(
        self, after: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[uuid.UUID, str, str, str]]:
        """(id, to, subject, sealed body) of the outbox, by id."""
        statement = select(
            OutboxEmail.id, OutboxEmail.to_address, OutboxEmail.subject, OutboxEmail.body
        ).order_by(OutboxEmail.id)
        if after is not None:
            statement = statement.where(OutboxEmail.id > after)
        rows = await self.session.execute(statement.limit(limit))
        return [(row[0], row[1], row[2], row[3]) for row in rows.all()]

    async def pseudonymize_audit(
        self,
        user_id: uuid.UUID,
        pseudonym: uuid.UUID,
        hashed_email: str,
        organizations: dict[uuid.UUID, uuid.UUID],
    ) -> int:
        """Replace the user's id by `pseudonym` wherever the log names them, with where they
        acted from; the log of an organization that goes with them goes too."""
        changed = 0
        if organizations:
            result = await self.session.execute(
                delete(AuditEntry).where(AuditEntry.organization_id.in_(organizations))
            )
            changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        statements = [
            update(AuditEntry)
            .where(AuditEntry.actor_user_id == user_id)
            .values(actor_user_id=pseudonym, ip=None, user_agent=None),
            update(AuditEntry)
            .where(AuditEntry.target_type == "user", AuditEntry.target_id == user_id)
            .values(target_id=pseudonym, ip=None, user_agent=None),
            update(AuditEntry).where(AuditEntry.email_hash == hashed_email).values(email_hash=None),
        ]
        for org_id, org_pseudonym in organizations.items():
            statements.append(
                update(AuditEntry)
                .where(AuditEntry.target_type == "organization", AuditEntry.target_id == org_id)
                .values(target_id=org_pseudonym)
            )
        for statement in statements:
            result = await self.session.execute(statement)
            changed += int(result.rowcount or 0)  # type: ignore[attr-defined]
        return changed

    async def pseudonymize_plan_changes(self, user_id: uuid.UUID, pseudonym: uuid.UUID) -> None:
        """A staff user's changes name them by id in `reference`."""
        await self.session.execute(
            update(PlanChange)
            .where(PlanChange.reference == str(user_id))
            .values(reference=f"deleted-user-{pseudonym}")
        )


def live_user() -> ColumnElement[bool]:
    """The user may still act: their deletion is not asked for, and the account not disabled."""
    return and_(User.deletion_requested_at.is_(None), User.disabled_at.is_(None))


def table(name: str) -> Table:
    return Base.metadata.tables[name]
