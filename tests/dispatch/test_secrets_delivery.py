"""A tenant's secrets reach exactly the tasks that may have them, and never come back out.

Real sandboxes of each runtime: the value is a read-only file inside the task that declares it
(and a variable where the type asks for one), for its own organization only; logs, result,
error, the database and the server's log never hold it.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.models import TaskStatus
from saassy.runtime.base import Runtime
from tests.conftest import SignUp
from tests.dispatch.conftest import CATALOG, EngineFactory
from tests.dispatch.runtimes import RUNTIME_KINDS, sandbox_runtime, settings_for
from tests.dispatch.support import task_row, wait_for_status
from tests.test_database_dump import dump_rows, raw_database_bytes

VALUE_A = f"tok-A-{uuid.uuid4().hex}"
VALUE_B = f"tok-B-{uuid.uuid4().hex}"


TYPES = ["secretive", "secretive_env", "nosy"]


@pytest.fixture
async def runtime(runtime_kind: str) -> AsyncIterator[Runtime]:
    async with sandbox_runtime(runtime_kind) as runtime:
        yield runtime


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], runtime_kind: str, tmp_path: Path
) -> Settings:
    return settings_for(runtime_kind, settings_factory, CATALOG, TYPES, tmp_path)


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def submit(client: httpx.AsyncClient, headers: dict[str, str], type_: str) -> uuid.UUID:
    response = await client.post(
        "/api/v1/tasks", headers=headers, json={"type": type_, "input": {}}
    )
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


async def logs_of(client: httpx.AsyncClient, headers: dict[str, str], task_id: uuid.UUID) -> str:
    response = await client.get(f"/api/v1/tasks/{task_id}/logs", headers=headers)
    assert response.status_code == 200
    return response.text


@pytest.mark.parametrize("runtime_kind", RUNTIME_KINDS, indirect=True)
async def test_secrets_reach_only_their_organizations_declaring_tasks_and_never_come_out(
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    engine_factory: EngineFactory,
    runtime: Runtime,
    capfd: pytest.CaptureFixture[str],
) -> None:
    alice, bob, carol = await signup(), await signup(), await signup()
    for account, value in ((alice, VALUE_A), (bob, VALUE_B)):
        stored = await client.put(
            "/api/v1/secrets/API_TOKEN", headers=account.headers, json={"value": value}
        )
        assert stored.status_code == 201, stored.text
    refused = await client.post(
        "/api/v1/tasks", headers=carol.headers, json={"type": "secretive", "input": {}}
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "secret_missing"
    assert refused.json()["error"]["field"] == "secrets.API_TOKEN"

    engine: TaskEngine = engine_factory(runtime)
    ctx.task_engine = engine
    await engine.start()
    try:
        a_task = await submit(client, alice.headers, "secretive")
        b_task = await submit(client, bob.headers, "secretive_env")
        nosy = await submit(client, alice.headers, "nosy")
        engine.notify_submitted()
        await wait_for_status(ctx.sessionmaker, [a_task, b_task, nosy], timeout_s=30)
    finally:
        ctx.task_engine = None

    a_row, b_row, nosy_row = [await task_row(ctx.sessionmaker, t) for t in (a_task, b_task, nosy)]
    # The list says when a task last had the secret opened; a secret nothing opened says never.
    listed = (await client.get("/api/v1/secrets", headers=alice.headers)).json()["items"]
    [used] = [item for item in listed if item["name"] == "API_TOKEN"]
    assert used["last_used_at"] is not None
    assert a_row.started_at is not None
    assert abs(datetime.fromisoformat(used["last_used_at"]) - a_row.started_at) < timedelta(
        seconds=30
    )
    await client.put("/api/v1/secrets/UNUSED", headers=alice.headers, json={"value": "x"})
    listed = (await client.get("/api/v1/secrets", headers=alice.headers)).json()["items"]
    assert [item["last_used_at"] for item in listed if item["name"] == "UNUSED"] == [None]
    assert a_row.status == b_row.status == nosy_row.status == TaskStatus.succeeded
    # Each saw its own organization's value (its digest proves it) and printed it in the clear.
    assert a_row.result == {"token": "[redacted:API_TOKEN]", "sha": sha(VALUE_A)}
    assert b_row.result == {"token": "[redacted:API_TOKEN]", "sha": sha(VALUE_B)}
    assert nosy_row.result == {"dir": "none", "env": "none", "listed": "none"}
    a_logs = await logs_of(client, alice.headers, a_task)
    assert "token [redacted:API_TOKEN]" in a_logs
    assert "leak [redacted:API_TOKEN]" in a_logs
    assert "token [redacted:API_TOKEN]" in await logs_of(client, bob.headers, b_task)

    everything = repr(await dump_rows(ctx)).encode() + raw_database_bytes(ctx)
    server_log = capfd.readouterr()
    for value in (VALUE_A, VALUE_B):
        assert value.encode() not in everything
        assert value not in server_log.out
        assert value not in server_log.err
