"""Live logs and statuses across processes: one app runs the task engine, another (API only)
serves the followers, on the same database and Redis.

Both apps run in this test's process, but share nothing in memory: each builds its own bus
from `SAASSY_REDIS_URL`, as two processes would.
"""

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
from fastapi import FastAPI

from saassy.app import create_app
from saassy.config import Settings
from saassy.context import AppContext
from saassy.events.bus import TaskEvent
from saassy.events.redis import RedisEventBus
from saassy.runtime.base import OutputLine, SandboxHandle, SandboxSpec
from saassy.runtime.fake import FakeRuntime, FakeScript
from tests.conftest import SignUp
from tests.processes import serving
from tests.services import REDIS_URL, require

pytestmark = pytest.mark.redis

CATALOG = Path(__file__).parents[1] / "dispatch" / "catalog.toml"
LINES = (OutputLine("stdout", b"one"), OutputLine("stderr", b"two"))
STREAM_S = 30.0  # bounds a wait that would otherwise hang on keepalives


class GatedRuntime(FakeRuntime):
    """Sandboxes start once the test opens the gate: its followers are connected by then."""

    def __init__(self) -> None:
        super().__init__(FakeScript(output=LINES, hang=True))
        self.gate = asyncio.Event()

    async def start(self, spec: SandboxSpec) -> SandboxHandle:
        await self.gate.wait()
        return await super().start(spec)


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """The API process: no engine here, so any live event it serves came through Redis."""
    redis = urlsplit(REDIS_URL)
    require("Redis", redis.hostname or "127.0.0.1", redis.port or 6379)
    return settings_factory(
        config=CATALOG,
        redis_url=REDIS_URL,
        redis_prefix=f"test-{uuid.uuid4().hex[:12]}",
        run_engine=False,
    )


@pytest.fixture
def runtime() -> GatedRuntime:
    return GatedRuntime()


@pytest.fixture
async def engine_app(settings: Settings, runtime: GatedRuntime) -> AsyncIterator[FastAPI]:
    """The other process: the same database and Redis, the task engine running."""
    engine_settings = settings.model_copy(update={"run_engine": True, "dispatch_poll_s": 0.05})
    application = create_app(engine_settings, runtime=runtime)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def served(app: FastAPI) -> AsyncIterator[str]:
    """The API app on a real socket: SSE needs a streaming client."""
    async with serving(app) as url:
        yield url


async def events_of(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, Any]]:
    """(event, data) pairs of an SSE stream, comments skipped."""
    name = None
    async for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: ") and name is not None:
            yield name, json.loads(line.removeprefix("data: "))
            name = None


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(int(STREAM_S / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    assert condition()


async def test_a_task_run_by_one_process_is_followed_live_on_another(
    app: FastAPI,
    ctx: AppContext,
    engine_app: FastAPI,
    runtime: GatedRuntime,
    served: str,
    signup: SignUp,
) -> None:
    engine_ctx: AppContext = engine_app.state.ctx
    assert ctx.task_engine is None
    assert engine_ctx.task_engine is not None
    assert isinstance(ctx.events, RedisEventBus)
    # The engine publishes on its app's bus: one Redis listener per process.
    assert engine_ctx.task_engine.events is engine_ctx.events
    assert ctx.events is not engine_ctx.events

    account, stranger = await signup(), await signup()
    organization_id = uuid.UUID(account.organization_id)
    async with (
        httpx.AsyncClient(base_url=served, timeout=STREAM_S) as client,
        client.stream("GET", "/api/v1/events", headers=account.headers) as statuses,
        client.stream("GET", "/api/v1/events", headers=stranger.headers) as elsewhere,
        asyncio.timeout(STREAM_S),
    ):
        assert (statuses.status_code, elsewhere.status_code) == (200, 200)
        await until(lambda: ctx.events.subscriber_count(organization_id) == 1)
        submitted = await client.post(
            "/api/v1/tasks", json={"type": "noop", "input": {}}, headers=account.headers
        )
        assert submitted.status_code == 202, submitted.text
        task_id = submitted.json()["id"]
        follow = {**account.headers, "Accept": "text/event-stream"}
        async with client.stream("GET", f"/api/v1/tasks/{task_id}/logs", headers=follow) as logs:
            assert logs.status_code == 200
            await until(lambda: ctx.events.subscriber_count(organization_id) == 2)
            runtime.gate.set()  # no line could be printed before the follower was there

            log_events = events_of(logs.aiter_lines())
            lines = [await anext(log_events) for _ in LINES]
            assert [(kind, data["data"]) for kind, data in lines] == [
                ("log", "one\n"),
                ("log", "two\n"),
            ]
            # Live, not replayed at the end: the task is still running, its sandbox hangs.
            status_events = events_of(statuses.aiter_lines())
            seen: list[str] = []
            while "running" not in seen:
                kind, data = await anext(status_events)
                assert (kind, data["task_id"]) == ("task.status", task_id)
                seen.append(data["status"])
            # `queued` from this process, the rest from the engine's, through Redis.
            assert seen == ["queued", "dispatched", "running"]

            cancel = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=account.headers)
            assert cancel.status_code == 202, cancel.text
            # The engine's process finds the request, kills the sandbox, says so over Redis.
            assert await anext(log_events) == ("end", {"status": "canceled"})
            kind, data = await anext(status_events)
            assert (kind, data["status"]) == ("task.status", "canceled")
        # The stranger's stream heard none of it: a test event for them comes first.
        await engine_ctx.events.publish(
            uuid.UUID(stranger.organization_id), TaskEvent("task.status", uuid.UUID(int=1), {})
        )
        kind, data = await anext(events_of(elsewhere.aiter_lines()))
        assert data["task_id"] == str(uuid.UUID(int=1))
