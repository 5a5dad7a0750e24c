"""The engine under test: the app's database, the tests' catalog, a fake or real runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine, build_task_engine
from saassy.runtime.fake import FakeRuntime
from tests.own_services import OwnPostgreSQL, start_postgresql

CATALOG = Path(__file__).parent / "catalog.toml"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(config=CATALOG)


@pytest.fixture
def runtime_kind(request: pytest.FixtureRequest) -> str:
    """The real runtime a test's engine runs: "process" unless the test parametrizes it
    (indirect, over tests.dispatch.runtimes.RUNTIME_KINDS) for the suites both runtimes pass."""
    return str(getattr(request, "param", "process"))


@pytest.fixture
def fake_runtime() -> FakeRuntime:
    return FakeRuntime()


EngineFactory = Callable[..., TaskEngine]


@pytest.fixture
async def engine_factory(ctx: AppContext) -> AsyncIterator[EngineFactory]:
    """Build engines on the app's database; stopped at the end of the test."""
    built: list[TaskEngine] = []

    def make(runtime: Any, **options: Any) -> TaskEngine:
        options.setdefault("lease", timedelta(seconds=3))
        options.setdefault("poll_s", 0.05)
        options.setdefault("parallelism", 8)
        options.setdefault("after_commit", ctx.after_commit)  # as the app's lifespan wires it
        engine = build_task_engine(ctx.settings, ctx.sessionmaker, runtime, **options)
        built.append(engine)
        return engine

    yield make
    for engine in built:
        await engine.stop(grace_s=0.1)


@pytest.fixture
async def engine(
    app: Any, engine_factory: EngineFactory, fake_runtime: FakeRuntime
) -> AsyncIterator[TaskEngine]:
    """A started engine on the fake runtime, published on the app context like the lifespan does."""
    engine = engine_factory(fake_runtime)
    app.state.ctx.task_engine = engine
    await engine.start()
    yield engine
    app.state.ctx.task_engine = None


@pytest.fixture
def own_postgresql() -> Iterator[OwnPostgreSQL]:
    """A PostgreSQL server of the test's own, to stop and start."""
    server = start_postgresql()
    try:
        yield server
    finally:
        server.remove()
