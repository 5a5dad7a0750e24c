"""The generic repository every domain builds on: all SQL lives in repositories."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from saassy.models.base import Base

M = TypeVar("M", bound=Base)


def table_of(model: type[Base]) -> Table:
    """A model's table: Core statements on it skip the ORM's work per statement (a hot path)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class RepositoryBase(Generic[M]):
    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def select(self) -> Select[M]:
        return select(self.model)

    async def get(self, id: uuid.UUID) -> M | None:
        result: M | None = await self.session.get(self.model, id)
        return result

    async def one_or_none(self, statement: Select[M]) -> M | None:
        result: M | None = (await self.session.execute(statement)).scalars().one_or_none()
        return result

    async def all(self, statement: Select[M]) -> Sequence[M]:
        result: Sequence[M] = (await self.session.execute(statement)).scalars().all()
        return result

    async def add(self, obj: M) -> M:
        self.session.add(obj)
        await self.session.flush()
        return obj

    async def delete(self, obj: M) -> None:
        await self.session.delete(obj)
        await self.session.flush()
