"""A dump of the database holds no usable key, token or password.

Every kind of secret is created through the API, then every column of every table (and, on
SQLite, the raw database files) is searched for it; the digests that are stored instead must not
work as credentials either, and tenant secrets are stored only sealed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.engine import make_url

from saassy.context import AppContext
from saassy.models import Base
from tests.conftest import SignUp
from tests.organizations.support import (
    accept,
    bearer,
    create_api_key,
    create_organization,
    invite,
    last_email_to,
)

PASSWORD = "Pa55word-only-in-memory-7Qx!"
MAGIC_LINK_PATH = "/api/v1/auth/magic-link"
TOKEN_IN_LINK = re.compile(r"token=([A-Za-z0-9_\-]{20,})")


def has_route(app: FastAPI, path: str) -> bool:
    return any(getattr(route, "path", None) == path for route in app.routes)


async def dump_rows(ctx: AppContext) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, as the database hands it out."""
    tables: dict[str, list[dict[str, Any]]] = {}
    async with ctx.sessionmaker() as session:
        for table in Base.metadata.sorted_tables:
            rows = (await session.execute(select(table))).mappings().all()
            tables[table.name] = [dict(row) for row in rows]
    return tables


def raw_database_bytes(ctx: AppContext) -> bytes:
    """The SQLite file and its write-ahead log, byte for byte (empty on PostgreSQL)."""
    url = make_url(ctx.settings.resolved_database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return b""
    path = Path(url.database)
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-journal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


async def test_a_database_dump_holds_no_usable_secret(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    secrets: dict[str, str] = {}

    owner = await signup("dump.owner@example.com", password=PASSWORD)
    secrets |= {"password": PASSWORD, "signup refresh": owner.refresh_token}
    secrets["signup access"] = owner.access_token
    login = await client.post(
        "/api/v1/auth/login", json={"email": owner.email, "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    secrets["login refresh"] = login.json()["refresh_token"]
    if has_route(app, "/api/v1/auth/refresh"):
        rotated = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": secrets["login refresh"]}
        )
        assert rotated.status_code == 200, rotated.text
        secrets["rotated refresh"] = rotated.json()["refresh_token"]

    secrets["api key"] = (await create_api_key(client, owner, name="dump"))["key"]
    org = await create_organization(client, owner, "Dump Test Org")
    invitee = await signup("dump.invitee@example.com")
    _, secrets["accepted invitation"] = await invite(client, ctx, owner, org["id"], invitee.email)
    assert (await accept(client, invitee, secrets["accepted invitation"])).status_code == 200
    _, secrets["pending invitation"] = await invite(
        client, ctx, owner, org["id"], "dump.pending@example.com", "admin"
    )
    if has_route(app, MAGIC_LINK_PATH):
        asked = await client.post(MAGIC_LINK_PATH, json={"email": "dump.magic@example.com"})
        assert asked.status_code == 202, asked.text
        _, body = await last_email_to(ctx, "dump.magic@example.com")
        match = TOKEN_IN_LINK.search(body)
        assert match is not None, "no token in the magic-link e-mail"
        secrets["magic link"] = match.group(1)

    # A tenant secret is sealed with a key the database does not hold (SAASSY_VAULT_KEYS).
    secrets["vault secret"] = "vault-value-sealed-at-rest-3Jd8!pQ"
    stored = await client.put(
        "/api/v1/secrets/DUMP_TOKEN",
        json={"value": secrets["vault secret"]},
        headers=owner.headers | {"Saassy-Organization": org["id"]},
    )
    assert stored.status_code == 201, stored.text

    tables = await dump_rows(ctx)
    assert [row["name"] for row in tables["vault_items"]] == ["DUMP_TOKEN"]
    dumped = repr(tables)
    raw = raw_database_bytes(ctx)
    for what, secret in secrets.items():
        # The whole secret, and its tail (an API key's visible prefix is stored on purpose).
        for needle in {secret, secret[-24:]}:
            assert needle not in dumped, f"the {what} is readable in the tables"
            assert needle.encode() not in raw, f"the {what} is readable in the database file"

    await assert_digests_are_not_credentials(app, client, tables)


async def assert_digests_are_not_credentials(
    app: FastAPI, client: httpx.AsyncClient, tables: dict[str, list[dict[str, Any]]]
) -> None:
    key_hashes = [row["key_hash"] for row in tables["api_keys"]]
    refresh_hashes = [row["token_hash"] for row in tables["refresh_tokens"]]
    invitation_hashes = [row["token_hash"] for row in tables["invitations"]]
    password_hashes = [row["password_hash"] for row in tables["users"] if row["password_hash"]]
    assert key_hashes
    assert refresh_hashes
    assert invitation_hashes
    assert password_hashes

    for digest in key_hashes:
        for presented in (digest, "sk_" + digest):
            response = await client.get("/api/v1/organizations", headers=bearer(presented))
            assert response.status_code == 401, presented
    if has_route(app, "/api/v1/auth/refresh"):
        for digest in refresh_hashes:
            response = await client.post("/api/v1/auth/refresh", json={"refresh_token": digest})
            assert response.status_code == 401, response.text
    # Even the invited address itself cannot accept with a stored digest.
    invited = await client.post(
        "/api/v1/auth/signup", json={"email": "dump.pending@example.com", "password": PASSWORD}
    )
    assert invited.status_code == 201, invited.text
    for digest in invitation_hashes:
        response = await client.post(
            "/api/v1/invitations/accept",
            json={"token": digest},
            headers=bearer(invited.json()["access_token"]),
        )
        assert response.status_code == 404, response.text
    for stored in password_hashes:
        response = await client.post(
            "/api/v1/auth/login", json={"email": "dump.owner@example.com", "password": stored}
        )
        assert response.status_code == 401, response.text
    if has_route(app, MAGIC_LINK_PATH + "/verify"):
        magic_hashes = [row["token_hash"] for row in tables["magic_links"]]
        assert magic_hashes
        for digest in magic_hashes:
            response = await client.post(MAGIC_LINK_PATH + "/verify", json={"token": digest})
            assert response.status_code == 401, response.text
