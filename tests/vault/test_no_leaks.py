"""A secret's value shows up nowhere but in the sandbox: not in logs, errors or any repr."""

from __future__ import annotations

import uuid

import httpx
import pytest
import structlog

from saassy.context import AppContext
from saassy.models import VaultItem
from saassy.vault.errors import SecretMissing, VaultItemUnreadable
from saassy.vault.schemas import SecretPut
from saassy.vault.service import open_secrets
from tests.conftest import SignUp
from tests.vault.support import SECRETS, put_secret, stored_items

CANARY = "canary-7f3a9d1e-value-that-must-not-leak"


async def test_no_value_reaches_the_logs(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = await signup()
    headers = owner.headers
    assert (await put_secret(client, headers, "TOKEN", CANARY)).status_code == 201
    assert (await put_secret(client, headers, "TOKEN", CANARY + "-2")).status_code == 200
    for body in ({"value": CANARY + "\x00"}, {"value": CANARY + "x" * 70_000}, {"value": [CANARY]}):
        assert (await client.put(f"{SECRETS}/TOKEN", json=body, headers=headers)).status_code == 422
    assert (await put_secret(client, headers, "bad-name", CANARY)).status_code == 422
    assert (await client.get(SECRETS, headers=headers)).status_code == 200
    assert (await client.get(f"{SECRETS}/TOKEN", headers=headers)).status_code == 200
    refused = await client.post("/api/v1/tasks", json={"type": "mailer"}, headers=headers)
    assert refused.status_code == 422
    async with ctx.sessionmaker() as session:
        values = await open_secrets(
            session, ctx.settings.vault_keyring, uuid.UUID(owner.organization_id), ["TOKEN"]
        )
    assert values == {"TOKEN": CANARY + "-2"}
    assert (await client.delete(f"{SECRETS}/TOKEN", headers=headers)).status_code == 204
    structlog.get_logger("tests").warning("capture check", marker="log-capture-works")

    captured = capfd.readouterr()
    logs = captured.out + captured.err + caplog.text
    assert "log-capture-works" in logs, "the log capture saw nothing: this test would be blind"
    assert CANARY not in logs


async def test_no_object_shows_a_value_in_its_repr(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    assert (await put_secret(client, owner.headers, "TOKEN", CANARY)).status_code == 201
    [item] = await stored_items(ctx, owner.organization_id)
    organization_id = uuid.UUID(owner.organization_id)
    body = SecretPut(value=CANARY)  # type: ignore[arg-type]
    unreadable = VaultItemUnreadable(organization_id, "secret", "TOKEN", "no key opens it")
    for thing in (body, item, ctx.settings, ctx.settings.vault_keyring, unreadable):
        assert CANARY not in repr(thing)
        assert CANARY not in str(thing)
    assert CANARY not in repr(body.model_dump())
    assert isinstance(item, VaultItem)
    assert CANARY not in str(SecretMissing(["TOKEN"], "mailer"))
