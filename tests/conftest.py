"""Fixtures: a migrated database (SQLite, or PostgreSQL via SAASSY_TEST_DATABASE_URL), the app,
and clients that sign up like a customer would."""

from __future__ import annotations

import functools
import gc
import os
import secrets
import shutil
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies import models as fastapi_dependency_models
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from saassy.app import create_app
from saassy.config import Settings
from saassy.config import settings as settings_module
from saassy.context import AppContext
from saassy.kit.db import create_engine
from saassy.kit.migrate import upgrade_database
from saassy.kit.security import PasswordHasher
from saassy.models import Base
from saassy.runtime import host
from tests.email.mail import latest_link_token
from tests.moto import moto_server, s3_location  # noqa: F401 - fixtures for every module
from tests.processes import run_dev, run_server  # noqa: F401 - fixtures for every module
from tests.runtime.support import without_system_bwrap
from tests.services import require

# `make stripe-smoke` runs these against Stripe itself (network, a test-mode key); `make test`
# never collects them.
collect_ignore = [] if os.environ.get("SAASSY_RUN_STRIPE_SMOKE") else ["stripe_smoke"]

TEST_DATABASE_URL = os.environ.get("SAASSY_TEST_DATABASE_URL", "")
# Random per run: no secret key in the repository signs anything.
TEST_SECRET = secrets.token_urlsafe(48)
# url-safe base64 of 32 bytes: the vault's key ring in tests.
TEST_VAULT_KEY = "dGVzdC12YXVsdC1rZXktMDEyMzQ1Njc4OWFiY2RlZmc="
CLIENT_IP = "203.0.113.10"
CLEANUP_ATTEMPTS = 5


def on_postgresql() -> bool:
    return TEST_DATABASE_URL.startswith("postgres")


def pytest_collection_finish(session: pytest.Session) -> None:
    # Every module is imported by now, and what they made lives until the end: out of the
    # garbage collector's way. Each full collection (one every few tests, after each app's
    # garbage) walked those ~300,000 objects again; frozen, they cost half as much (measured:
    # CPU 22.5 s -> 18.8 s and 20.5 s -> 18.5 s over the same 94 tests, gen-2 time halved).
    gc.freeze()


def pytest_unconfigure(config: pytest.Config) -> None:
    # A whole run leaves a heap of gigabytes; the interpreter's collections at exit walked it
    # for minutes after the last test (CI waited ~3.5 min per pass). The report is written by
    # now: let the process end without looking at those objects again.
    gc.freeze()


@pytest.fixture(autouse=True)
def _forget_fastapis_callables() -> Iterator[None]:
    yield
    # FastAPI keeps up to 4096 endpoint callables in module-level caches (built for one app per
    # process); closures over each test's app kept every app alive: gigabytes over a run, and
    # garbage collections that stalled random tests for seconds.
    for cached in vars(fastapi_dependency_models).values():
        if isinstance(cached, functools._lru_cache_wrapper):
            cached.cache_clear()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--only-database-tests",
        action="store_true",
        help="Run only the tests that use the test database (CI's second pass, on PostgreSQL: "
        "the others do the same on any database and ran in the first).",
    )
    parser.addoption(
        "--also-run",
        action="append",
        default=[],
        metavar="PATH",
        help="With --only-database-tests, keep the tests under PATH too (CI runs the benchmark's "
        "smoke test in its PostgreSQL pass, and ignores it in the SQLite one, to even them).",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("only_database_tests"):
        return
    # Every test on the test database asks for it through this fixture, directly or not.
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    also = tuple(path.rstrip("/") + "/" for path in config.getoption("also_run"))
    for item in items:
        uses = "migrated_template" in getattr(item, "fixturenames", ())
        (kept if uses or item.nodeid.startswith(also) else dropped).append(item)
    config.hook.pytest_deselected(items=dropped)
    items[:] = kept


# Argon2id at the cost production refuses to go below (19 MiB, 2 passes) is tens of ms of CPU
# per hash, and the suite signs up and logs in thousands of times: in this process the same code
# hashes at argon2's smallest cost, except in tests marked `production_password_cost`, which
# check the cost itself. Servers the tests start as subprocesses hash at the configured cost.
CHEAP_PASSWORD_HASHER = PasswordHasher(memory_kib=8, time_cost=1, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_password_hashing(request: pytest.FixtureRequest) -> Iterator[None]:
    # A MonkeyPatch of its own: the test's `monkeypatch`, made first by this autouse fixture,
    # would be undone only after the app's lifespan has ended, on what the test patched.
    if request.node.get_closest_marker("production_password_cost") is not None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings_module, "password_hasher", lambda *_cost: CHEAP_PASSWORD_HASHER)
        yield


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No SAASSY_* variable from the caller's shell, and a directory without saassy.toml: for
    tests of settings read from the environment (set yours on the monkeypatch returned)."""
    for key in list(os.environ):
        if key.startswith("SAASSY_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.fixture
def no_bubblewrap_at_all(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A host where no sandbox can be made: no bwrap on PATH and no bundled binary."""
    monkeypatch.setattr(host, "bundled_bwrap", lambda: None)
    with without_system_bwrap():
        yield


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Migrate once per run: a SQLite file to copy, or the PostgreSQL database itself."""
    if on_postgresql():
        url = make_url(TEST_DATABASE_URL)
        require("PostgreSQL", url.host or "127.0.0.1", url.port or 5432)
        _reset_postgresql_schema(TEST_DATABASE_URL)
        upgrade_database(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return str(path)


def _reset_postgresql_schema(url: str) -> None:
    import asyncio

    async def reset() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())


@pytest.fixture
async def database_url(migrated_template: str, tmp_path: Path) -> AsyncIterator[str]:
    """A clean, migrated database for one test."""
    if on_postgresql():
        yield migrated_template
        engine = create_engine(migrated_template)
        # DELETE, children first: on these few rows it takes a fifth of TRUNCATE's time, which
        # recreates every table's files (0.16 s per test, minutes over a run).
        emptying = [table.delete() for table in reversed(Base.metadata.sorted_tables)]
        for attempt in range(CLEANUP_ATTEMPTS):
            try:
                async with engine.begin() as conn:
                    # A connection the test left behind (a server, an engine or a loop in a
                    # thread it started) must not hold a lock that makes the clean-up, and so
                    # the whole run, wait forever; one that reconnects and locks again after
                    # the terminate makes the clean-up time out, and we terminate again.
                    await conn.execute(text("SET LOCAL lock_timeout = '2s'"))
                    await conn.execute(
                        text(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                    )
                    for statement in emptying:
                        await conn.execute(statement)
                break
            except DBAPIError:
                if attempt == CLEANUP_ATTEMPTS - 1:
                    raise
        await engine.dispose()
        return
    path = tmp_path / "saassy.db"
    shutil.copyfile(migrated_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def settings_factory(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "database_url": database_url,
            "data_dir": tmp_path / "data",
            "secret_key": TEST_SECRET,
            "vault_keys": TEST_VAULT_KEY,
            "config": None,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings, background=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def ctx(app: FastAPI) -> AppContext:
    context: AppContext = app.state.ctx
    return context


def client_for(app: FastAPI, ip: str = CLIENT_IP) -> httpx.AsyncClient:
    """A client as seen from `ip` (the rate limits key on the client address)."""
    transport = httpx.ASGITransport(app=app, client=(ip, 51000))
    return httpx.AsyncClient(transport=transport, base_url="http://saassy.test")


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as c:
        yield c


@dataclass
class Account:
    """A signed-up customer: their tokens, user and personal organization."""

    email: str
    password: str
    user_id: str
    organization_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


SignUp = Callable[..., Coroutine[Any, Any, Account]]


@pytest.fixture
def signup(client: httpx.AsyncClient, ctx: AppContext) -> SignUp:
    """Sign up through the API and, unless `verified=False`, follow the verification e-mail
    as its owner would (an unverified account may not create API keys or invite members)."""

    async def make(
        email: str | None = None,
        password: str = "correct horse battery",
        *,
        verified: bool = True,
        **extra: Any,
    ) -> Account:
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        response = await client.post(
            "/api/v1/auth/signup", json={"email": email, "password": password, **extra}
        )
        assert response.status_code == 201, response.text
        body = response.json()
        if verified:
            token = await latest_link_token(ctx, email.lower(), "/verify-email")
            verify = await client.post("/api/v1/auth/verify-email", json={"token": token})
            assert verify.status_code == 204, verify.text
        return Account(
            email=email,
            password=password,
            user_id=body["user"]["id"],
            organization_id=body["organization"]["id"],
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
        )

    return make
