"""Outages of the services Saassy depends on, for real: each test starts its own PostgreSQL or
Redis on a free port and stops or restarts it mid-run. Clients see 503 while the database is
away; the scheduler and the workers wait and carry on; no accepted task is lost or run twice."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from saassy.context import AppContext
from saassy.kit.migrate import upgrade_database
from saassy.models import Task
from tests.conftest import SignUp
from tests.own_services import OwnPostgreSQL, OwnRedis, start_postgresql, start_redis
from tests.web.support import browser_for, sign_up


@pytest.fixture
def own_postgresql() -> Iterator[OwnPostgreSQL]:
    server = start_postgresql()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def database_url(own_postgresql: OwnPostgreSQL) -> str:
    """This module's tests run on their own PostgreSQL, whatever the run's test database."""
    url = own_postgresql.create_database("saassy")
    upgrade_database(url)
    return url


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    server = start_redis()
    try:
        yield server
    finally:
        server.stop()


def assert_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) > 0


async def test_the_api_and_the_dashboard_answer_503_while_the_database_is_away(
    app: FastAPI,
    client: httpx.AsyncClient,
    signup: SignUp,
    own_postgresql: OwnPostgreSQL,
    ctx: AppContext,
) -> None:
    account = await signup()
    browser = browser_for(app)
    await sign_up(browser)
    assert (await browser.get("/app")).status_code == 200
    before = await client.get("/api/v1/tasks", headers=account.headers)
    assert before.status_code == 200, before.text

    own_postgresql.stop()  # every pooled connection dies with the server
    assert_database_unavailable(
        await client.post("/api/v1/tasks", json={"type": "noop"}, headers=account.headers)
    )
    assert_database_unavailable(await client.get("/api/v1/tasks", headers=account.headers))
    page = await browser.get("/app")
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert "We will be right back" in page.text
    assert "Retry-After" in page.headers
    ready = await client.get("/ready")
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"

    own_postgresql.start()
    submitted = await client.post("/api/v1/tasks", json={"type": "noop"}, headers=account.headers)
    assert submitted.status_code == 202, submitted.text
    assert (await client.get("/ready")).status_code == 200
    async with ctx.sessionmaker() as session:  # the refused submission wrote nothing
        count = await session.scalar(select(func.count()).select_from(Task))
    assert count == 1
