"""Notifications' SQL: preferences, who receives a kind, and the notices already counted."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from sqlalchemy import and_, bindparam, func, literal, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert, ReturningInsert
from sqlalchemy.sql.elements import ColumnElement

from saassy.kit.repository import RepositoryBase, table_of
from saassy.kit.time import utcnow
from saassy.models import ApiKey, Membership, NoticeSent, NotificationPreference, Role, User
from saassy.notifications.kinds import KINDS, NotificationKind


@dataclass(frozen=True)
class Recipient:
    user_id: uuid.UUID
    email: str


class PreferenceRepository(RepositoryBase[NotificationPreference]):
    model = NotificationPreference

    async def of_user(self, user_id: uuid.UUID) -> Sequence[NotificationPreference]:
        return await self.all(self.select().where(NotificationPreference.user_id == user_id))

    async def put(self, user_id: uuid.UUID, kind: NotificationKind, enabled: bool) -> None:
        """Set one kind (a row is written even when it matches the default: the user chose).
        One upsert, so two first saves at once (a double click, two tabs) both succeed."""
        dialect = self.session.get_bind().dialect.name
        await self.session.execute(
            _choice_statement(dialect),
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "kind": kind.value,
                "enabled": enabled,
                "now": utcnow(),
            },
        )

    def _wants(self, kind: NotificationKind) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
        """The outer join to the user's row for `kind`, and the condition that they want it."""
        joined = and_(
            NotificationPreference.user_id == User.id, NotificationPreference.kind == kind.value
        )
        wants = func.coalesce(NotificationPreference.enabled, literal(KINDS[kind].default))
        return joined, wants

    async def members_wanting(
        self, organization_id: uuid.UUID, kind: NotificationKind, roles: Iterable[Role]
    ) -> list[Recipient]:
        """The organization's members in `roles`, with enabled accounts, who want `kind`."""
        joined, wants = self._wants(kind)
        rows = await self.session.execute(
            select(User.id, User.email)
            .join(Membership, Membership.user_id == User.id)
            .outerjoin(NotificationPreference, joined)
            .where(
                Membership.organization_id == organization_id,
                Membership.role.in_(list(roles)),
                User.disabled_at.is_(None),
                wants.is_(True),
            )
            .order_by(User.email)
        )
        return [Recipient(user_id, email) for user_id, email in rows]

    async def submitter_wanting(
        self,
        organization_id: uuid.UUID,
        user_id: uuid.UUID | None,
        api_key_id: uuid.UUID | None,
        kind: NotificationKind,
    ) -> Recipient | None:
        """Who submitted a task (the user, or the API key's creator) if still an enabled member
        of its organization who wants `kind`: one query."""
        if user_id is None and api_key_id is None:
            return None
        key_creator = (
            select(ApiKey.created_by_user_id).where(ApiKey.id == api_key_id).scalar_subquery()
        )
        submitter = User.id == (user_id if user_id is not None else key_creator)
        joined, wants = self._wants(kind)
        row = (
            await self.session.execute(
                select(User.id, User.email)
                .join(
                    Membership,
                    and_(
                        Membership.user_id == User.id,
                        Membership.organization_id == organization_id,
                    ),
                )
                .outerjoin(NotificationPreference, joined)
                .where(submitter, User.disabled_at.is_(None), wants.is_(True))
            )
        ).one_or_none()
        return None if row is None else Recipient(row[0], row[1])


@cache
def _choice_statement(dialect: str) -> Insert:
    """Insert the user's choice for a kind, or change the one they made (built once per dialect)."""
    preferences = table_of(NotificationPreference)
    new_row = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(preferences).values(
        id=bindparam("id"),
        user_id=bindparam("user_id"),
        kind=bindparam("kind"),
        enabled=bindparam("enabled"),
        created_at=bindparam("now"),
    )
    return new_row.on_conflict_do_update(
        index_elements=["user_id", "kind"],
        set_={"enabled": new_row.excluded.enabled, "updated_at": bindparam("now")},
    )


@cache
def _count_statement(dialect: str) -> ReturningInsert[int]:
    """Insert the key with count 1, or add 1 to it; returns the count (built once per dialect)."""
    notices = table_of(NoticeSent)
    new_row = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(notices).values(
        id=bindparam("id"), key=bindparam("key"), count=1, created_at=bindparam("now")
    )
    return new_row.on_conflict_do_update(
        index_elements=["key"], set_={"count": notices.c.count + 1}
    ).returning(notices.c.count)


@cache
def _once_statement(dialect: str) -> ReturningInsert[uuid.UUID]:
    notices = table_of(NoticeSent)
    new_row = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(notices).values(
        id=bindparam("id"), key=bindparam("key"), count=1, created_at=bindparam("now")
    )
    return new_row.on_conflict_do_nothing(index_elements=["key"]).returning(notices.c.id)


class NoticeRepository(RepositoryBase[NoticeSent]):
    model = NoticeSent

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def claim_once(self, key: str, now: datetime) -> bool:
        """True for the one transaction that records `key` first. On PostgreSQL a concurrent
        insert of the same key waits for the first to commit, then inserts nothing."""
        params = {"id": uuid.uuid4(), "key": key, "now": now}
        found = await self.session.execute(_once_statement(self._dialect()), params)
        return found.first() is not None

    async def count(self, key: str, now: datetime) -> int:
        """Add one to `key`'s count (1 when new); the count after."""
        params = {"id": uuid.uuid4(), "key": key, "now": now}
        result = await self.session.execute(_count_statement(self._dialect()), params)
        count: int = result.scalar_one()
        return count

    async def count_of(self, key: str) -> int:
        found = await self.session.scalar(select(NoticeSent.count).where(NoticeSent.key == key))
        return found or 0
