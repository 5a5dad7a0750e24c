"""The issue's own case, with real processes: `saassy api` running the engine on one port,
`saassy api` without it on another, one database and one Redis; a customer follows a task
over SSE on the process that does not run it."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from saassy.config import Settings
from saassy.context import AppContext
from saassy.models import TaskLogChunk
from tests.conftest import TEST_SECRET, TEST_VAULT_KEY, SignUp
from tests.processes import StartServer
from tests.runtime.conftest import require_sandbox
from tests.services import REDIS_URL, require

pytestmark = pytest.mark.redis

CATALOG = Path(__file__).parent / "ticker_catalog.toml"
STREAM_S = 60.0  # bounds waits that keep-alives would otherwise stretch forever


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """The test's own app: it signs customers up on the servers' database."""
    return settings_factory(config=CATALOG)


async def events_of(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, Any]]:
    name = None
    async for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name is not None:
            yield name, json.loads(line.removeprefix("data: "))
            name = None


async def newest_seq(ctx: AppContext, task_id: str) -> int:
    async with ctx.sessionmaker() as session:
        newest = await session.scalar(
            select(func.max(TaskLogChunk.seq)).where(TaskLogChunk.task_id == uuid.UUID(task_id))
        )
    return int(newest or 0)


async def test_logs_and_statuses_reach_a_follower_on_another_api_process(
    run_server: StartServer,
    database_url: str,
    ctx: AppContext,
    signup: SignUp,
    tmp_path: Path,
) -> None:
    redis = urlsplit(REDIS_URL)
    require("Redis", redis.hostname or "127.0.0.1", redis.port or 6379)
    require_sandbox()
    shared = {
        "SAASSY_ENV": "test",
        "SAASSY_DATABASE_URL": database_url,
        "SAASSY_SECRET_KEY": TEST_SECRET,
        "SAASSY_VAULT_KEYS": TEST_VAULT_KEY,
        "SAASSY_CONFIG": str(CATALOG),
        "SAASSY_REDIS_URL": REDIS_URL,
        "SAASSY_REDIS_PREFIX": f"test-{uuid.uuid4().hex[:12]}",
        "SAASSY_DISPATCH_POLL_S": "0.05",
    }
    _, api = await asyncio.gather(  # side by side: each takes seconds to start
        asyncio.to_thread(
            run_server, ["api"], shared | {"SAASSY_DATA_DIR": str(tmp_path / "engine")}, "/ready"
        ),
        asyncio.to_thread(
            run_server,
            ["api"],
            shared | {"SAASSY_DATA_DIR": str(tmp_path / "api"), "SAASSY_RUN_ENGINE": "false"},
            "/ready",
        ),
    )
    account = await signup()
    follow = {**account.headers, "Accept": "text/event-stream"}
    async with (
        httpx.AsyncClient(base_url=api.url, timeout=STREAM_S) as client,
        client.stream("GET", "/api/v1/events", headers=account.headers) as statuses,
        asyncio.timeout(STREAM_S),
    ):
        assert (await client.get("/ready")).json()["events"] == "redis"
        status_lines = statuses.aiter_lines()
        assert await anext(status_lines) == ": connected"
        submitted = await client.post(
            "/api/v1/tasks", json={"type": "ticker", "input": {}}, headers=account.headers
        )
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["id"]

        async with client.stream("GET", f"/api/v1/tasks/{task_id}/logs", headers=follow) as logs:
            log_events = events_of(logs.aiter_lines())
            kind, first = await anext(log_events)
            assert (kind, first["data"]) == ("log", "tick 0\n")
            # Replayed lines are at most those the database held by now; the task never ends
            # by itself, so a line past them can only have come through Redis.
            replayable = await newest_seq(ctx, task_id)
            async for kind, data in log_events:
                assert kind == "log"
                if data["seq"] > replayable:
                    break
            cancel = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=account.headers)
            assert cancel.status_code == 202, cancel.text
            async for kind, data in log_events:
                if kind == "end":
                    assert data == {"status": "canceled"}
                    break

        seen = []
        async for kind, data in events_of(status_lines):
            assert (kind, data["task_id"]) == ("task.status", task_id)
            seen.append(data["status"])
            if data["status"] == "canceled":
                break
    # Only `queued` came from this process; the rest from the engine's, through Redis.
    assert seen[0] == "queued"
    assert "running" in seen
