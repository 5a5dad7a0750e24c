"""A task of an image task type, end to end through the engine on the docker runtime."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from saassy.config import Settings
from saassy.context import AppContext
from saassy.models import AttemptStatus, TaskStatus
from saassy.runtime.docker import DockerRuntime
from tests.conftest import SignUp
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import attempts_of, insert_tasks, task_row, wait_for_status
from tests.runtime.docker_support import build_worker_image, docker_runtime

CATALOG = Path(__file__).parents[1] / "runtime" / "docker_catalog.toml"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(config=CATALOG, runtime="docker")


@pytest.fixture
def runtime() -> Iterator[DockerRuntime]:
    runtime = docker_runtime()
    build_worker_image(runtime)
    yield runtime
    runtime.close()


async def test_an_image_task_runs_in_a_container_and_is_measured(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory, runtime: DockerRuntime
) -> None:
    engine = engine_factory(runtime)
    await engine.start()
    account = await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker,
        ctx.settings.catalog,
        account.organization_id,
        type="render",
        input={"hello": "docker"},
    )
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id], timeout_s=60)

    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.succeeded, task.error
    assert task.result == {"hello": "docker"}  # the image's CMD copied its input
    [attempt] = await attempts_of(ctx.sessionmaker, task_id)
    assert attempt.status == AttemptStatus.succeeded
    assert attempt.cpu_seconds is not None
    assert attempt.cpu_seconds > 0
    assert attempt.peak_memory_bytes is not None
    assert attempt.peak_memory_bytes > 0
