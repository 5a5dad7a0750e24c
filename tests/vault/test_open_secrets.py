"""What the engine reads: an organization's own values, and nothing a copied row would give."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import delete, update

from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import Organization, VaultItem, VaultKind
from saassy.vault.errors import SecretMissing, VaultItemUnreadable
from saassy.vault.repository import VaultRepository
from saassy.vault.service import open_secrets
from tests.conftest import SignUp
from tests.organizations.support import create_organization
from tests.vault.support import put_secret, stored_items


async def open_for(ctx: AppContext, organization_id: str, *names: str) -> dict[str, str]:
    async with ctx.sessionmaker() as session:
        return await open_secrets(
            session, ctx.settings.vault_keyring, uuid.UUID(organization_id), names
        )


async def test_open_secrets_gives_the_names_asked_of_that_organization(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner, other = await signup(), await signup()
    for name, value in [("A", "alpha"), ("B", "beta"), ("C", "gamma")]:
        assert (await put_secret(client, owner.headers, name, value)).status_code == 201
    assert (await put_secret(client, other.headers, "A", "other-alpha")).status_code == 201

    assert await open_for(ctx, owner.organization_id, "C", "A") == {"C": "gamma", "A": "alpha"}
    assert await open_for(ctx, other.organization_id, "A") == {"A": "other-alpha"}
    assert await open_for(ctx, owner.organization_id) == {}


async def test_open_secrets_names_the_first_missing_one(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner, other = await signup(), await signup()
    assert (await put_secret(client, owner.headers, "A", "alpha")).status_code == 201
    assert (await put_secret(client, other.headers, "B", "beta")).status_code == 201
    with pytest.raises(SecretMissing) as caught:
        await open_for(ctx, owner.organization_id, "A", "B", "C")
    assert caught.value.field == "secrets.B"
    assert caught.value.details == {"missing": ["B", "C"]}
    assert "alpha" not in str(caught.value)


async def test_a_row_copied_to_another_name_or_organization_does_not_open(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner, thief = await signup(), await signup()
    assert (await put_secret(client, owner.headers, "REAL", "the-real-value")).status_code == 201
    assert (await put_secret(client, owner.headers, "DECOY", "decoy")).status_code == 201
    assert (await put_secret(client, thief.headers, "LOOT", "thief-own")).status_code == 201
    real = {item.name: item for item in await stored_items(ctx, owner.organization_id)}["REAL"]
    async with ctx.sessionmaker() as session, session.begin():
        # Someone with write access to the database moves the sealed value around.
        for organization_id, name in [(owner.organization_id, "DECOY"),
                                      (thief.organization_id, "LOOT")]:  # fmt: skip
            await session.execute(
                update(VaultItem)
                .where(
                    VaultItem.organization_id == uuid.UUID(organization_id),
                    VaultItem.name == name,
                )
                .values(sealed=real.sealed)
            )
    with pytest.raises(VaultItemUnreadable, match="another vault item") as caught:
        await open_for(ctx, owner.organization_id, "DECOY")
    assert "the-real-value" not in str(caught.value)
    with pytest.raises(VaultItemUnreadable, match="no key of the vault key ring opens it"):
        await open_for(ctx, thief.organization_id, "LOOT")
    assert await open_for(ctx, owner.organization_id, "REAL") == {"REAL": "the-real-value"}


async def test_deleting_an_organization_deletes_its_secrets(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = (await create_organization(client, owner, "Doomed"))["id"]
    assert (await put_secret(client, owner.headers, "TOKEN", "v", team)).status_code == 201
    assert (await put_secret(client, owner.headers, "TOKEN", "kept")).status_code == 201
    deleted = await client.delete(f"/api/v1/organizations/{team}", headers=owner.headers)
    assert deleted.status_code == 204
    assert await stored_items(ctx, team) == []
    assert len(await stored_items(ctx, owner.organization_id)) == 1


async def test_removing_an_organization_row_cascades_to_its_vault(ctx: AppContext) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        organization = Organization(name="Gone", plan="free", plan_overrides={})
        session.add(organization)
        await session.flush()
        await VaultRepository(session).add(
            VaultItem(
                organization_id=organization.id,
                kind=VaultKind.secret,
                name="TOKEN",
                sealed=ctx.settings.vault_keyring.seal(organization.id, "secret", "TOKEN", "v"),
                updated_at=utcnow(),
            )
        )
    assert len(await stored_items(ctx, organization.id)) == 1
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(delete(Organization).where(Organization.id == organization.id))
    assert await stored_items(ctx, organization.id) == []


async def test_a_resealing_swap_keeps_a_value_written_meanwhile(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    assert (await put_secret(client, owner.headers, "TOKEN", "old")).status_code == 201
    [stale] = await stored_items(ctx, owner.organization_id)
    assert (await put_secret(client, owner.headers, "TOKEN", "new")).status_code == 200
    async with ctx.sessionmaker() as session, session.begin():
        swapped = await VaultRepository(session).replace_sealed(stale.id, stale.sealed, b"x")
    assert swapped is False
    assert await open_for(ctx, owner.organization_id, "TOKEN") == {"TOKEN": "new"}
