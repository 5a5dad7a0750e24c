"""Organizations, API keys and staff made straight in the database (no sign-up, no Argon2)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from sqlalchemy import func, select

from saassy.context import AppContext
from saassy.kit.security import new_token, token_digest
from saassy.models import ApiKey, Organization, QuotaCounter, QuotaReservation, User

MakeOrganization = Callable[..., Coroutine[Any, Any, uuid.UUID]]


@pytest.fixture
def make_organization(ctx: AppContext) -> MakeOrganization:
    async def make(plan: str = "free", overrides: dict[str, Any] | None = None) -> uuid.UUID:
        organization = Organization(name="Acme", plan=plan, plan_overrides=overrides or {})
        async with ctx.sessionmaker() as session, session.begin():
            session.add(organization)
        return organization.id

    return make


async def counter_value(ctx: AppContext, organization_id: uuid.UUID, metric: str) -> int:
    """The sum over periods, read in a fresh session (what other transactions see)."""
    async with ctx.sessionmaker() as session:
        used = await session.scalar(
            select(func.coalesce(func.sum(QuotaCounter.used), 0)).where(
                QuotaCounter.organization_id == organization_id, QuotaCounter.metric == metric
            )
        )
    return int(used or 0)


async def reservation_count(ctx: AppContext, organization_id: uuid.UUID) -> int:
    async with ctx.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).where(QuotaReservation.organization_id == organization_id)
        )
    return int(count or 0)


async def issue_api_key(ctx: AppContext, organization_id: uuid.UUID | str) -> str:
    """An API key of the organization, stored the way the API keys endpoint stores one."""
    key = f"sk_{new_token()}"
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            ApiKey(
                organization_id=uuid.UUID(str(organization_id)),
                name="test",
                prefix=key[:10],
                key_hash=token_digest(key),
            )
        )
    return key


async def make_staff(ctx: AppContext, user_id: uuid.UUID | str) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        user = await session.get(User, uuid.UUID(str(user_id)))
        assert user is not None
        user.is_staff = True
