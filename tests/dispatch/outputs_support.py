"""The output tests' engine: a real sandbox, its own catalog, and checks on what storage holds."""

from __future__ import annotations

import textwrap
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.models import Artifact
from saassy.runtime.base import Runtime
from saassy.runtime.docker import DockerRuntime
from saassy.runtime.process import ProcessRuntime
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import insert_tasks, wait_for_status
from tests.runtime.conftest import require_isolation
from tests.runtime.docker_support import docker_runtime, python_image
from tests.runtime.support import own_work_root

OUTPUTS_CATALOG = Path(__file__).parent / "outputs_catalog.toml"


@pytest.fixture
async def sandbox_engine(
    app: Any, engine_factory: EngineFactory, tmp_path: Path, runtime_kind: str
) -> AsyncIterator[TaskEngine]:
    """The engine on a real runtime (the process one unless the test names docker too),
    published for the API's downloads."""
    if runtime_kind == "process":
        runtime: Runtime = ProcessRuntime(work_dir=own_work_root(tmp_path))
        require_isolation(runtime)
    else:
        runtime = docker_runtime()
        python_image(runtime)
    engine = engine_factory(runtime)
    app.state.ctx.task_engine = engine
    await engine.start()
    yield engine
    app.state.ctx.task_engine = None
    if isinstance(runtime, DockerRuntime):
        await engine.stop(grace_s=0.1)
        runtime.close()


async def run_code(
    ctx: AppContext,
    engine: TaskEngine,
    organization_id: str,
    code: str,
    *,
    type: str = "writer",
    timeout_s: int = 30,
) -> uuid.UUID:
    """Run `code` as the program and wait for its end: no longer than its timeout + 5 s."""
    [task_id] = await insert_tasks(
        ctx.sessionmaker,
        ctx.settings.catalog,
        organization_id,
        type=type,
        timeout_s=timeout_s,
        input={"code": textwrap.dedent(code)},
    )
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id], timeout_s=timeout_s + 5)
    return task_id


async def assert_storage_matches_rows(ctx: AppContext, engine: TaskEngine) -> None:
    """Every stored object has its row and every row its object: nothing orphaned, no partials."""
    async with ctx.sessionmaker() as session:
        rows = set((await session.execute(select(Artifact.storage_key))).scalars())
    assert set(await engine.storage.keys()) == rows


async def artifacts_listed(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: uuid.UUID, limit: int = 100
) -> list[dict[str, Any]]:
    """Every page of the task's artifact list."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = await client.get(
            f"/api/v1/tasks/{task_id}/artifacts", headers=headers, params=params
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items
