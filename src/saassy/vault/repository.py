"""SQL for the vault: tenant reads take an OrganizationScope; re-sealing is compare-and-set."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, delete, func, or_, select, update

from saassy.auth.principal import OrganizationScope
from saassy.kit.pagination import PageParams, keyset
from saassy.kit.repository import RepositoryBase
from saassy.models import VaultItem, VaultKind

USE_RESOLUTION = timedelta(minutes=1)


class VaultRepository(RepositoryBase[VaultItem]):
    model = VaultItem

    async def get_named(
        self,
        organization_id: uuid.UUID,
        scope: OrganizationScope,
        kind: VaultKind,
        name: str,
        *,
        lock: bool = False,
    ) -> VaultItem | None:
        if organization_id not in scope:
            return None
        statement = self.select().where(
            VaultItem.organization_id == organization_id,
            VaultItem.kind == kind,
            VaultItem.name == name,
        )
        return await self.one_or_none(statement.with_for_update() if lock else statement)

    async def list_kind(
        self,
        organization_id: uuid.UUID,
        scope: OrganizationScope,
        kind: VaultKind,
        params: PageParams,
    ) -> Sequence[VaultItem]:
        if organization_id not in scope:
            return []
        statement = self.select().where(
            VaultItem.organization_id == organization_id, VaultItem.kind == kind
        )
        return await self.all(keyset(statement, params, VaultItem.created_at, VaultItem.id))

    async def count_kind(self, organization_id: uuid.UUID, kind: VaultKind) -> int:
        statement = select(func.count()).where(
            VaultItem.organization_id == organization_id, VaultItem.kind == kind
        )
        return int(await self.session.scalar(statement) or 0)

    async def names_present(
        self,
        organization_id: uuid.UUID,
        scope: OrganizationScope,
        kind: VaultKind,
        names: Iterable[str],
    ) -> set[str]:
        """Which of `names` the organization has, in one query (values are not read)."""
        if organization_id not in scope:
            return set()
        rows = await self.session.scalars(
            select(VaultItem.name).where(
                VaultItem.organization_id == organization_id,
                VaultItem.kind == kind,
                VaultItem.name.in_(list(names)),
            )
        )
        return set(rows.all())

    async def sealed_named(
        self,
        organization_id: uuid.UUID,
        scope: OrganizationScope,
        kind: VaultKind,
        names: Iterable[str],
    ) -> dict[str, bytes]:
        """name -> sealed value for those of `names` the organization has, in one query."""
        if organization_id not in scope:
            return {}
        rows = await self.session.execute(
            select(VaultItem.name, VaultItem.sealed).where(
                VaultItem.organization_id == organization_id,
                VaultItem.kind == kind,
                VaultItem.name.in_(list(names)),
            )
        )
        return {name: sealed for name, sealed in rows.all()}

    async def mark_used(
        self, organization_id: uuid.UUID, kind: VaultKind, names: Iterable[str], now: datetime
    ) -> None:
        """Note that a task had `names` opened, unless already noted within USE_RESOLUTION."""
        await self.session.execute(
            update(VaultItem)
            .where(
                VaultItem.organization_id == organization_id,
                VaultItem.kind == kind,
                VaultItem.name.in_(list(names)),
                or_(
                    VaultItem.last_used_at.is_(None),
                    VaultItem.last_used_at < now - USE_RESOLUTION,
                ),
            )
            .values(last_used_at=now)
        )

    async def delete_of_organization(self, organization_id: uuid.UUID) -> int:
        """Delete every item of an organization (it is being deleted); how many there were."""
        result = await self.session.execute(
            delete(VaultItem).where(VaultItem.organization_id == organization_id)
        )
        return _rowcount(result)

    async def sealed_batch(
        self, after: uuid.UUID | None, limit: int
    ) -> Sequence[tuple[uuid.UUID, uuid.UUID, str, str, bytes]]:
        """(id, organization id, kind, name, sealed) of every organization, by id, past `after`:
        for re-sealing, which is the operator's work across all tenants."""
        statement = select(
            VaultItem.id,
            VaultItem.organization_id,
            VaultItem.kind,
            VaultItem.name,
            VaultItem.sealed,
        )
        if after is not None:
            statement = statement.where(VaultItem.id > after)
        rows = await self.session.execute(statement.order_by(VaultItem.id).limit(limit))
        return [(id, org, kind, name, sealed) for id, org, kind, name, sealed in rows.all()]

    async def replace_sealed(self, item_id: uuid.UUID, old: bytes, new: bytes) -> bool:
        """Swap the sealed value only if it is still `old`: a write that came in meanwhile
        (sealed with the newest key already) is kept."""
        result = await self.session.execute(
            update(VaultItem)
            .where(VaultItem.id == item_id, VaultItem.sealed == old)
            .values(sealed=new)
        )
        return _rowcount(result) == 1


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult)
    return result.rowcount
