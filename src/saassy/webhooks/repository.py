"""SQL for webhook endpoints, their messages and the attempts' log."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import CursorResult

from saassy.auth.principal import OrganizationScope
from saassy.kit.pagination import PageParams, keyset
from saassy.kit.repository import RepositoryBase, table_of
from saassy.models import (
    Organization,
    Task,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
    WebhookMessageStatus,
)


class WebhookEndpointRepository(RepositoryBase[WebhookEndpoint]):
    model = WebhookEndpoint

    async def get_in_organization(
        self,
        endpoint_id: uuid.UUID,
        organization_id: uuid.UUID,
        scope: OrganizationScope,
        *,
        lock: bool = False,
    ) -> WebhookEndpoint | None:
        if organization_id not in scope:
            return None
        statement = self.select().where(
            WebhookEndpoint.id == endpoint_id, WebhookEndpoint.organization_id == organization_id
        )
        return await self.one_or_none(statement.with_for_update() if lock else statement)

    async def list_for_organization(
        self, organization_id: uuid.UUID, scope: OrganizationScope, params: PageParams
    ) -> Sequence[WebhookEndpoint]:
        if organization_id not in scope:
            return []
        statement = self.select().where(WebhookEndpoint.organization_id == organization_id)
        return await self.all(
            keyset(statement, params, WebhookEndpoint.created_at, WebhookEndpoint.id)
        )

    async def count_in_organization(self, organization_id: uuid.UUID) -> int:
        """How many endpoints the organization has, its row locked (PostgreSQL) so that two
        additions at once count one after the other."""
        await self.session.execute(
            select(Organization.id).where(Organization.id == organization_id).with_for_update()
        )
        counted = await self.session.scalar(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.organization_id == organization_id)
        )
        return int(counted or 0)

    async def disable_if_enabled(self, endpoint_id: uuid.UUID, reason: str, now: datetime) -> bool:
        result = await self.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
            .values(enabled=False, disabled_reason=reason, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1


@dataclass(frozen=True)
class ClaimedMessage:
    """A message taken for one attempt, with what sending it needs from its endpoint."""

    id: uuid.UUID
    organization_id: uuid.UUID
    endpoint_id: uuid.UUID
    event: dict[str, object]
    attempts: int  # of this round, this one included
    number: int  # of every round: the attempt's number in the log
    url: str
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None


# Built once: on the engine's hot path (every task's end) building an ORM statement and its
# cache key costs more CPU than running it (ADR 0004).
_endpoints = table_of(WebhookEndpoint)
_tasks = table_of(Task)
ENABLED_ENDPOINTS = select(_endpoints.c.id, _endpoints.c.event_types).where(
    _endpoints.c.organization_id == bindparam("organization_id"),
    _endpoints.c.enabled.is_(True),
)
TASK_FACTS = select(
    _tasks.c.type,
    _tasks.c.created_at,
    _tasks.c.started_at,
    _tasks.c.finished_at,
    _tasks.c.attempt_count,
    _tasks.c.error_code,
).where(_tasks.c.id == bindparam("task_id"))


class WebhookMessageRepository(RepositoryBase[WebhookMessage]):
    model = WebhookMessage

    async def enabled_endpoints_of(
        self, organization_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, list[str]]]:
        """(id, event types) of the organization's enabled endpoints."""
        rows = await self.session.execute(ENABLED_ENDPOINTS, {"organization_id": organization_id})
        return [(endpoint_id, types) for endpoint_id, types in rows]

    async def task_facts(self, task_id: uuid.UUID) -> dict[str, Any]:
        """What an event tells of a task: its type, times, attempts and error code."""
        row = (await self.session.execute(TASK_FACTS, {"task_id": task_id})).one()
        return dict(row._mapping)

    async def due(
        self,
        due_by: datetime,
        limit: int,
        *,
        skip_organizations: Collection[uuid.UUID] = (),
        skip_endpoints: Collection[uuid.UUID] = (),
    ) -> list[tuple[WebhookMessage, WebhookEndpoint]]:
        """Up to `limit` messages of enabled endpoints due by `due_by`, oldest due first,
        locked until the transaction ends, with their endpoints.

        PostgreSQL's `SKIP LOCKED` lets several relays claim disjoint messages; SQLite has one
        writer at a time (`BEGIN IMMEDIATE`), which makes the same read-then-write atomic.
        """
        statement = (
            select(WebhookMessage, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookMessage.endpoint_id)
            .where(
                WebhookMessage.status == WebhookMessageStatus.pending,
                WebhookMessage.next_attempt_at <= due_by,
                WebhookEndpoint.enabled.is_(True),
            )
            .order_by(WebhookMessage.next_attempt_at)
            .limit(limit)
            .with_for_update(of=WebhookMessage, skip_locked=True)
        )
        if skip_organizations:
            statement = statement.where(WebhookMessage.organization_id.not_in(skip_organizations))
        if skip_endpoints:
            statement = statement.where(WebhookMessage.endpoint_id.not_in(skip_endpoints))
        return [(message, endpoint) for message, endpoint in await self.session.execute(statement)]

    async def claim(
        self,
        picked: Sequence[tuple[WebhookMessage, WebhookEndpoint]],
        now: datetime,
        lease: timedelta,
    ) -> list[ClaimedMessage]:
        """Take the `due` messages picked for `lease`, counting the attempt."""
        claimed = []
        for message, endpoint in picked:
            message.attempts += 1
            message.total_attempts += 1
            message.next_attempt_at = now + lease
            claimed.append(
                ClaimedMessage(
                    id=message.id,
                    organization_id=message.organization_id,
                    endpoint_id=endpoint.id,
                    event=message.event,
                    attempts=message.attempts,
                    number=message.total_attempts,
                    url=endpoint.url,
                    secret=endpoint.secret,
                    previous_secret=endpoint.previous_secret,
                    previous_secret_expires_at=endpoint.previous_secret_expires_at,
                )
            )
        await self.session.flush()
        return claimed

    async def finish_attempt(
        self,
        message: ClaimedMessage,
        *,
        status: WebhookMessageStatus,
        now: datetime,
        error: str | None,
        next_attempt_at: datetime | None,
    ) -> bool:
        """Record what became of the claimed attempt, unless the message moved on since (a
        redelivery started another round)."""
        values: dict[str, object] = {
            "status": status,
            "next_attempt_at": next_attempt_at,
            "last_error": error,
        }
        if status is WebhookMessageStatus.delivered:
            values["delivered_at"] = now
        result = await self.session.execute(
            update(WebhookMessage)
            .where(
                WebhookMessage.id == message.id,
                WebhookMessage.total_attempts == message.number,
                WebhookMessage.status == WebhookMessageStatus.pending,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    async def get_of_endpoint(
        self, message_id: uuid.UUID, endpoint_id: uuid.UUID, *, lock: bool = False
    ) -> WebhookMessage | None:
        statement = self.select().where(
            WebhookMessage.id == message_id, WebhookMessage.endpoint_id == endpoint_id
        )
        return await self.one_or_none(statement.with_for_update() if lock else statement)

    async def list_for_endpoint(
        self, endpoint_id: uuid.UUID, params: PageParams
    ) -> Sequence[WebhookMessage]:
        statement = self.select().where(WebhookMessage.endpoint_id == endpoint_id)
        return await self.all(
            keyset(
                statement,
                params,
                WebhookMessage.created_at,
                WebhookMessage.id,
                newest_first=True,
            )
        )

    async def attempts_of(self, message_id: uuid.UUID) -> Sequence[WebhookAttempt]:
        statement = (
            select(WebhookAttempt)
            .where(WebhookAttempt.message_id == message_id)
            .order_by(WebhookAttempt.number)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def attempts_of_many(self, message_ids: list[uuid.UUID]) -> Sequence[WebhookAttempt]:
        if not message_ids:
            return []
        statement = (
            select(WebhookAttempt)
            .where(WebhookAttempt.message_id.in_(message_ids))
            .order_by(WebhookAttempt.message_id, WebhookAttempt.number)
        )
        return (await self.session.execute(statement)).scalars().all()


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
