"""Steps the vault tests share: store a secret through the API, read what the database holds."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from saassy.context import AppContext
from saassy.models import VaultItem

SECRETS = "/api/v1/secrets"


async def put_secret(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    name: str,
    value: str,
    organization_id: str | None = None,
) -> httpx.Response:
    if organization_id is not None:
        headers = headers | {"Saassy-Organization": organization_id}
    return await client.put(f"{SECRETS}/{name}", json={"value": value}, headers=headers)


async def stored_items(ctx: AppContext, organization_id: str | uuid.UUID) -> list[VaultItem]:
    """The organization's vault rows as the database holds them, by name."""
    async with ctx.sessionmaker() as session:
        rows = await session.scalars(
            select(VaultItem)
            .where(VaultItem.organization_id == uuid.UUID(str(organization_id)))
            .order_by(VaultItem.name)
        )
        return list(rows.all())
