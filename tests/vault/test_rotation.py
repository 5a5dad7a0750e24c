"""`saassy vault rotate`: an old key opens until rotation; after it, the new key alone does."""

from __future__ import annotations

import asyncio
import base64
import secrets
import uuid

import httpx
import pytest

from saassy.context import AppContext
from saassy.vault.errors import VaultItemUnreadable
from saassy.vault.keys import KeyRing, parse_ring
from saassy.vault.service import open_secrets
from tests.conftest import TEST_VAULT_KEY, SignUp
from tests.test_cli import invoke
from tests.vault.support import put_secret, stored_items

KEY_B = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
STORED = {"FIRST": "value-one", "SECOND": "value-two", "THIRD": "value-three"}


def ring(keys: str) -> KeyRing:
    return KeyRing(parse_ring(keys))


async def open_all(ctx: AppContext, keyring: KeyRing, organization_id: str) -> dict[str, str]:
    async with ctx.sessionmaker() as session:
        return await open_secrets(session, keyring, uuid.UUID(organization_id), list(STORED))


async def rotate(database_url: str, keys: str, *args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(
        invoke,
        "vault",
        "rotate",
        *args,
        env={"SAASSY_DATABASE_URL": database_url, "SAASSY_VAULT_KEYS": keys},
    )
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
async def sealed_under_a(client: httpx.AsyncClient, ctx: AppContext, signup: SignUp) -> list[str]:
    """Two organizations with three secrets each, sealed under the test key (A)."""
    owners = [await signup(), await signup()]
    for owner in owners:
        for name, value in STORED.items():
            response = await put_secret(client, owner.headers, name, value)
            assert response.status_code == 201, response.text
    return [owner.organization_id for owner in owners]


async def test_rotation_moves_every_item_to_the_newest_key(
    ctx: AppContext, database_url: str, sealed_under_a: list[str]
) -> None:
    new_then_old = f"{KEY_B},{TEST_VAULT_KEY}"
    before = {org: await stored_items(ctx, org) for org in sealed_under_a}
    for org in sealed_under_a:
        assert await open_all(ctx, ring(new_then_old), org) == STORED
        with pytest.raises(VaultItemUnreadable):
            await open_all(ctx, ring(KEY_B), org)

    # Batches of 4 over 6 items: two transactions, the last one short.
    assert await rotate(database_url, new_then_old, "--batch-size", "4") == (
        0,
        "re-sealed 6 of 6 vault items with the newest key",
    )
    for org in sealed_under_a:
        assert await open_all(ctx, ring(KEY_B), org) == STORED
        after = await stored_items(ctx, org)
        assert [i.updated_at for i in after] == [i.updated_at for i in before[org]]
        assert all(a.sealed != b.sealed for a, b in zip(after, before[org], strict=True))

    exit_code, output = await rotate(database_url, new_then_old)
    assert (exit_code, output) == (
        0,
        "all 6 vault items were sealed with the newest key already",
    )
    assert await rotate(database_url, KEY_B) == (0, output)


async def test_dropping_the_old_key_before_rotating_fails_clearly(
    ctx: AppContext, database_url: str, sealed_under_a: list[str]
) -> None:
    exit_code, output = await rotate(database_url, KEY_B)
    assert exit_code == 1
    assert output.startswith("error: The vault secret ")
    assert "cannot be opened: no key of the vault key ring opens it" in output
    assert "put it back (last in the list) and run `saassy vault rotate`" in output
    assert "Traceback" not in output
    assert all(value not in output for value in STORED.values())
    # Nothing was lost: with the old key back in the ring, rotation goes through.
    assert (await rotate(database_url, f"{KEY_B},{TEST_VAULT_KEY}"))[0] == 0
    assert await open_all(ctx, ring(KEY_B), sealed_under_a[0]) == STORED


async def test_rotating_an_empty_vault_says_so(database_url: str) -> None:
    assert await rotate(database_url, TEST_VAULT_KEY) == (
        0,
        "the vault is empty: nothing to re-seal",
    )


def test_rotate_explains_itself() -> None:
    result = invoke("vault", "rotate", "--help")
    assert result.exit_code == 0
    assert "Re-seal every vault item with the newest key" in " ".join(result.output.split())
