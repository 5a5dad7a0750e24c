"""Logs, artifacts and events through the API: durable, live, tenant scoped."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from saassy.app import create_app
from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.kit.time import utcnow
from saassy.models import Organization, TaskStatus
from saassy.runtime.base import OutputLine
from saassy.runtime.fake import FakeRuntime, FakeScript
from saassy.task_output import streams
from saassy.task_output.router import router as output_router
from tests.conftest import SignUp, client_for
from tests.dispatch.support import insert_tasks, wait_for_status
from tests.organizations.support import create_api_key
from tests.processes import serving


def with_output_routes(app: FastAPI) -> FastAPI:
    """Until the lead registers the router in app.py."""
    if not any(getattr(r, "path", "") == "/api/v1/events" for r in app.routes):
        app.include_router(output_router, prefix="/api/v1")
    return app


@pytest.fixture
def api(app: FastAPI) -> FastAPI:
    return with_output_routes(app)


def sandbox(task_id: uuid.UUID, attempt: int = 1) -> str:
    return f"task-{task_id}-attempt-{attempt}"


def sse_events(body: str) -> list[tuple[str, Any]]:
    events = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


LINES = (
    OutputLine("stdout", b"one"),
    OutputLine("stderr", b"two"),
    OutputLine("stdout", "tr\u00e9s".encode()),
)


async def test_logs_are_durable_across_a_restart(
    api: FastAPI,
    ctx: AppContext,
    settings: Settings,
    signup: SignUp,
    engine: TaskEngine,
    fake_runtime: FakeRuntime,
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    fake_runtime.script(sandbox(task_id), FakeScript(output=LINES))
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id])

    async with client_for(api) as client:
        response = await client.get(f"/api/v1/tasks/{task_id}/logs", headers=account.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "one\ntwo\ntr\u00e9s\n"

    restarted = with_output_routes(create_app(settings, background=False))
    async with restarted.router.lifespan_context(restarted), client_for(restarted) as client:
        again = await client.get(f"/api/v1/tasks/{task_id}/logs", headers=account.headers)
    assert again.text == response.text


async def test_following_logs_streams_until_the_task_ends(
    api: FastAPI, ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    fake_runtime.script(sandbox(task_id), FakeScript(output=LINES, delay_s=0.5, exit_code=2))
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id], [TaskStatus.running])

    headers = {**account.headers, "Accept": "text/event-stream"}
    async with client_for(api) as client:
        response = await client.get(f"/api/v1/tasks/{task_id}/logs", headers=headers)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert [data["data"] for kind, data in events if kind == "log"] == [
        "one\n",
        "two\n",
        "tr\u00e9s\n",
    ]
    assert events[-1] == ("end", {"status": "failed"})


async def test_another_tenant_gets_404_for_logs_and_artifacts(
    api: FastAPI, ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    owner, stranger = await signup(), await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, owner.organization_id)
    fake_runtime.script(sandbox(task_id), FakeScript(output=LINES, files={"a.txt": b"secret"}))
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id])
    async with client_for(api) as client:
        listing = await client.get(f"/api/v1/tasks/{task_id}/artifacts", headers=owner.headers)
        [artifact] = listing.json()["items"]
        for path in (
            f"/api/v1/tasks/{task_id}/logs",
            f"/api/v1/tasks/{task_id}/artifacts",
            f"/api/v1/tasks/{task_id}/artifacts/{artifact['id']}",
            f"/api/v1/tasks/{uuid.uuid4()}/logs",
        ):
            response = await client.get(path, headers=stranger.headers)
            assert response.status_code == 404, path
            assert "secret" not in response.text
        missing = await client.get(
            f"/api/v1/tasks/{task_id}/artifacts/{uuid.uuid4()}", headers=owner.headers
        )
        assert missing.status_code == 404


async def test_artifacts_are_listed_and_downloaded(
    api: FastAPI, ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    files = {"report.csv": b"a,b\n1,2\n", "blob.bin": bytes(range(256)) * 1000}
    fake_runtime.script(
        sandbox(task_id), FakeScript(files={**files, "result.json": b'{"rows": 1}'})
    )
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id])

    async with client_for(api) as client:
        listing = await client.get(f"/api/v1/tasks/{task_id}/artifacts", headers=account.headers)
        assert listing.status_code == 200
        items = listing.json()["items"]
        assert [(a["path"], a["size_bytes"]) for a in items] == [
            ("blob.bin", 256_000),
            ("report.csv", 8),
        ]
        assert items[1]["content_type"] == "text/csv"
        for item in items:
            download = await client.get(
                f"/api/v1/tasks/{task_id}/artifacts/{item['id']}", headers=account.headers
            )
            assert download.status_code == 200
            assert download.content == files[item["path"]]
            assert download.headers["content-type"] == "application/octet-stream"
            assert item["path"] in download.headers["content-disposition"]


@pytest.fixture
async def served(api: FastAPI) -> AsyncIterator[str]:
    """The app on a real socket: SSE needs a streaming client."""
    async with serving(api) as url:
        yield url


async def test_the_events_stream_shows_the_organization_task_statuses(
    engine: TaskEngine, served: str, ctx: AppContext, signup: SignUp
) -> None:
    account, other = await signup(), await signup()
    async with (
        httpx.AsyncClient(base_url=served, timeout=10) as client,
        client.stream("GET", "/api/v1/events", headers=account.headers) as response,
    ):
        assert response.status_code == 200
        lines = response.aiter_lines()
        assert await anext(lines) == ": connected"
        await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, other.organization_id)
        [task_id] = await insert_tasks(
            ctx.sessionmaker, ctx.settings.catalog, account.organization_id
        )
        engine.notify_submitted()
        seen: list[str] = []
        # Keep-alive comments keep the stream busy, so bound the wait: a miss fails, not hangs.
        async with asyncio.timeout(30):
            async for line in lines:
                if line.startswith("data: "):
                    event = json.loads(line.removeprefix("data: "))
                    assert event["task_id"] == str(task_id), "another tenant's event leaked"
                    seen.append(event["status"])
                    if event["status"] == "succeeded":
                        break
    assert seen == ["dispatched", "running", "succeeded"]


async def test_a_task_submitted_through_the_api_is_announced_as_queued(
    api: FastAPI, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    subscription = engine.events.subscribe(uuid.UUID(account.organization_id))
    async with client_for(api) as client:
        response = await client.post(
            "/api/v1/tasks", json={"type": "noop", "input": {}}, headers=account.headers
        )
    assert response.status_code == 202, response.text
    event = await subscription.get(5.0)
    assert event is not None
    assert (event.kind, str(event.task_id), event.data) == (
        "task.status",
        response.json()["id"],
        {"status": "queued", "attempt": 0},
    )


@pytest.mark.parametrize(
    "cut", ["revoke the key", "rotate it without overlap", "delete the organization"]
)
@pytest.mark.parametrize("path", ["/api/v1/tasks/{task_id}/logs", "/api/v1/events"])
async def test_a_stream_with_an_api_key_ends_when_the_key_stops_working(
    engine: TaskEngine,
    fake_runtime: FakeRuntime,
    served: str,
    ctx: AppContext,
    signup: SignUp,
    monkeypatch: pytest.MonkeyPatch,
    cut: str,
    path: str,
) -> None:
    monkeypatch.setattr(streams, "KEEPALIVE_S", 0.1)
    monkeypatch.setattr(streams, "RECHECK_S", 0.05)
    account = await signup()
    async with httpx.AsyncClient(base_url=served, timeout=10) as client:
        key = await create_api_key(client, account)
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, timeout_s=60
    )
    fake_runtime.script(sandbox(task_id), FakeScript(hang=True))
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id], [TaskStatus.running])

    headers = {"Authorization": f"Bearer {key['key']}", "Accept": "text/event-stream"}
    received = ""
    async with (
        httpx.AsyncClient(base_url=served, timeout=10) as client,
        client.stream("GET", path.format(task_id=task_id), headers=headers) as response,
    ):
        assert response.status_code == 200
        chunks = response.aiter_text()
        async with asyncio.timeout(5):
            while received.count(": keepalive") < 2:
                received += await anext(chunks)
        if cut == "revoke the key":
            revoked = await client.delete(f"/api/v1/api-keys/{key['id']}", headers=account.headers)
            assert revoked.status_code == 204, revoked.text
        elif cut == "rotate it without overlap":
            rotated = await client.post(
                f"/api/v1/api-keys/{key['id']}/rotate",
                json={"overlap_s": 0},
                headers=account.headers,
            )
            assert rotated.status_code == 201, rotated.text
        else:
            async with ctx.sessionmaker() as session, session.begin():
                await session.execute(
                    update(Organization)
                    .where(Organization.id == uuid.UUID(account.organization_id))
                    .values(deleted_at=utcnow())
                )
        async with asyncio.timeout(5):  # still open: the key's holder would see the logs
            async for chunk in chunks:
                received += chunk
    assert "event: end" not in received  # the task runs on; the stream was cut
