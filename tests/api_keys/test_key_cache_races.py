"""The API key memory against changes committed while it reads, and against other processes'
changes: a revocation is never undone, a plan change counts at the next submission."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from saassy.app import create_app
from saassy.auth.access_cache import AccessChanged
from saassy.auth.repository import AuthRepository, KeyHolder
from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import ApiKey, Organization
from tests.billing.billing_app import write_catalog
from tests.conftest import client_for
from tests.quotas.conftest import MakeOrganization, issue_api_key
from tests.quotas.conftest import make_organization as make_organization  # a fixture

TASKS = "/api/v1/tasks"
RENDER = {"type": "render", "input": {}}  # requires_plan = ["pro", "enterprise"]


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(config=write_catalog(tmp_path), api_key_cache_s=2.0)


@pytest.fixture
async def other(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second server process on the same database."""
    application: FastAPI = create_app(settings, background=False)
    async with application.router.lifespan_context(application), client_for(application) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_a_revocation_committed_while_a_miss_reads_the_key_is_not_undone(
    client: httpx.AsyncClient,
    ctx: AppContext,
    make_organization: MakeOrganization,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Request A misses the cache and reads the key (still good); while its read awaits, a
    revocation in this same process commits and clears the cache (AccessChanged); A must
    not then put what it read before the revocation (the revoking process would accept the
    revoked key for up to SAASSY_API_KEY_CACHE_S)."""
    key = await issue_api_key(ctx, await make_organization())
    read = AuthRepository.key_holder

    on_postgresql = ctx.engine.dialect.name == "postgresql"

    async def read_then_revocation_commits(self: AuthRepository, digest: str) -> KeyHolder | None:
        holder = await read(self, digest)
        # The revoking request's commit and after-commit effect, interleaved at this await.
        # On PostgreSQL it really commits on its own connection; SQLite has one connection,
        # held by this request, so there the row is revoked just after the request.
        if on_postgresql:
            async with ctx.sessionmaker() as session, session.begin():
                await session.execute(update(ApiKey).values(revoked_at=utcnow()))
        await ctx.after_commit([AccessChanged()])
        return holder

    monkeypatch.setattr(AuthRepository, "key_holder", read_then_revocation_commits)
    assert (await client.get(TASKS, headers=bearer(key))).status_code == 200
    monkeypatch.setattr(AuthRepository, "key_holder", read)
    if not on_postgresql:
        async with ctx.sessionmaker() as session, session.begin():
            await session.execute(update(ApiKey).values(revoked_at=utcnow()))
    # The revocation committed and its effect ran before this request: it must be refused.
    assert (await client.get(TASKS, headers=bearer(key))).status_code == 401


async def test_a_paid_upgrade_admits_the_premium_type_at_once_in_every_process(
    ctx: AppContext, other: httpx.AsyncClient, make_organization: MakeOrganization
) -> None:
    organization_id = await make_organization(plan="free")
    key = await issue_api_key(ctx, organization_id)
    headers = {"Authorization": f"Bearer {key}"}
    assert (await other.post("/api/v1/tasks", json=RENDER, headers=headers)).status_code == 402
    # The customer pays: the Stripe webhook, handled by another process, moves them to pro.
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Organization).where(Organization.id == organization_id).values(plan="pro")
        )
    admitted = await other.post("/api/v1/tasks", json=RENDER, headers=headers)
    assert admitted.status_code == 202, admitted.text
