"""Whatever a program leaves behind ends its attempt clearly, billed what the kernel measured.

Real sandboxes: each task burns half a CPU-second, then leaves one kind of hostile output.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch import supervisor
from saassy.dispatch.engine import TaskEngine
from saassy.dispatch.outcome import write_outcome
from saassy.models import Artifact, TaskStatus
from saassy.runtime.fake import DEFAULT_USAGE, FakeRuntime, FakeScript
from tests.conftest import SignUp
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.runtimes import RUNTIME_KINDS, sandbox_runtime, settings_for
from tests.dispatch.support import (
    attempts_of,
    insert_tasks,
    set_plan,
    task_row,
    usage_of,
    wait_for_status,
)

# case: (status, error code, words of the error, the units billed); None: any ending is clear
CASES: dict[str, tuple[TaskStatus | None, str | None, str | None, dict[str, float]]] = {
    "deep_result": (TaskStatus.failed, "invalid_output", "nests deeper than 64 levels", {}),
    "long_int_result": (TaskStatus.failed, "invalid_output", "longer than 40 digits", {}),
    "surrogate_result": (TaskStatus.failed, "invalid_output", "lone surrogate", {}),
    "nul_result": (TaskStatus.failed, "invalid_output", "NUL character", {}),
    "unit_names": (
        TaskStatus.failed,
        "invalid_output",
        "reported more than 50 distinct unit names",
        {},
    ),
    # A bad event line is ignored; the lines around it count.
    "deep_event": (TaskStatus.succeeded, None, None, {"units:pages": 2.0}),
    "long_int_event": (TaskStatus.succeeded, None, None, {"units:pages": 2.0}),
    # An artifact named b"bad-\xff.txt" (not UTF-8): refused, renamed or invalid_output, as
    # long as the attempt ends, is billed and leaves no file without its row.
    "bad_name": (None, None, None, {"units:pages": 2.0}),
}
KERNEL_METRICS = {"cpu_seconds", "peak_memory_mb", "wall_seconds", "memory_gb_seconds"}
CATALOG = Path(__file__).parent / "catalog.toml"


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], runtime_kind: str, tmp_path: Path
) -> Settings:
    return settings_for(runtime_kind, settings_factory, CATALOG, ["hostile"], tmp_path)


@pytest.mark.parametrize("runtime_kind", RUNTIME_KINDS, indirect=True)
async def test_hostile_output_ends_each_attempt_clearly_and_billed(
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    engine_factory: EngineFactory,
    runtime_kind: str,
) -> None:
    account = await signup()
    await set_plan(ctx.sessionmaker, account.organization_id, "big")
    ids: dict[str, uuid.UUID] = {}
    for case in CASES:
        [ids[case]] = await insert_tasks(
            ctx.sessionmaker,
            ctx.settings.catalog,
            account.organization_id,
            type="hostile",
            input={"case": case},
            timeout_s=20,
        )
    async with sandbox_runtime(runtime_kind) as runtime:
        engine = engine_factory(runtime, parallelism=len(CASES))
        await engine.start()
        final = await wait_for_status(ctx.sessionmaker, ids.values(), timeout_s=25 + 5)
        await engine.stop()
    async with ctx.sessionmaker() as session:
        keys = set((await session.execute(select(Artifact.storage_key))).scalars())
    root = engine.storage.root  # type: ignore[attr-defined]
    assert {path.relative_to(root).as_posix() for path in stored_files(engine)} <= keys

    for case, (status, code, words, units) in CASES.items():
        task_id = ids[case]
        assert final[task_id] == status or status is None, case
        response = await client.get(f"/api/v1/tasks/{task_id}", headers=account.headers)
        assert response.status_code == 200, (case, response.text)
        body = response.json()
        if status is None:
            units = units if body["status"] == "succeeded" else {}
        else:
            assert body["error_code"] == code, (case, body)
        if words is not None:
            assert words in body["error"], (case, body["error"])
            assert body["result"] is None
        [attempt] = await attempts_of(ctx.sessionmaker, task_id)
        assert attempt.cpu_seconds is not None, case
        assert attempt.cpu_seconds >= 0.45, case
        billed = await usage_of(ctx.sessionmaker, task_id)
        assert billed[(1, "cpu_seconds")] == pytest.approx(attempt.cpu_seconds, abs=1e-6), case
        assert {metric for _, metric in billed} == KERNEL_METRICS | set(units), case
        assert {metric: billed[(1, metric)] for metric in units} == units, case


def sandbox(task_id: uuid.UUID) -> str:
    return f"task-{task_id}-attempt-1"


def stored_files(engine: TaskEngine) -> list[Path]:
    root = engine.storage.root  # type: ignore[attr-defined]
    return [path for path in Path(root).rglob("*") if path.is_file()]


async def test_artifacts_that_cannot_be_stored_end_the_attempt_invalid_output(
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    fake_runtime: FakeRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refuse(*_args: object) -> list[object]:
        raise ValueError("the output is over the storage quota")

    monkeypatch.setattr(supervisor, "store_artifacts", refuse)
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    fake_runtime.script(sandbox(task_id), FakeScript(files={"big.bin": b"x" * 100}))
    engine.notify_submitted()

    await wait_for_status(ctx.sessionmaker, [task_id])
    task = await task_row(ctx.sessionmaker, task_id)
    assert (task.status, task.error_code) == (TaskStatus.failed, "invalid_output")
    assert "over the storage quota" in (task.error or "")
    billed = await usage_of(ctx.sessionmaker, task_id)
    assert billed[(1, "cpu_seconds")] == pytest.approx(DEFAULT_USAGE.cpu_seconds)


async def test_an_outcome_the_database_refuses_is_written_again_without_the_output(
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    fake_runtime: FakeRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[list[object]] = []

    async def refuse_once(*args: Any, **kwargs: Any) -> TaskStatus:
        calls.append(kwargs["artifacts"])
        if len(calls) == 1:
            raise ValueError("the database refused the result")
        return await write_outcome(*args, **kwargs)

    monkeypatch.setattr(supervisor, "write_outcome", refuse_once)
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    script = FakeScript(files={"result.json": b'{"ok": 1}', "report.txt": b"kept?"})
    fake_runtime.script(sandbox(task_id), script)
    engine.notify_submitted()

    await wait_for_status(ctx.sessionmaker, [task_id])
    task = await task_row(ctx.sessionmaker, task_id)
    assert (task.status, task.error_code, task.result) == (
        TaskStatus.failed,
        "invalid_output",
        None,
    )
    assert "the database refused the result" in (task.error or "")
    assert [len(artifacts) for artifacts in calls] == [1, 0]  # report.txt, then nothing
    assert stored_files(engine) == []  # stored before the refusal, removed after it
    billed = await usage_of(ctx.sessionmaker, task_id)
    assert billed[(1, "cpu_seconds")] == pytest.approx(DEFAULT_USAGE.cpu_seconds)


async def test_output_found_invalid_keeps_none_of_the_files(
    ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    files = {"result.json": b"[" * 100_000 + b"]" * 100_000, "report.txt": b"not kept"}
    fake_runtime.script(sandbox(task_id), FakeScript(files=files))
    engine.notify_submitted()

    await wait_for_status(ctx.sessionmaker, [task_id])
    task = await task_row(ctx.sessionmaker, task_id)
    assert (task.status, task.error_code) == (TaskStatus.failed, "invalid_output")
    assert stored_files(engine) == []
