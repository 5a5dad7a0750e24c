"""A task type whose program this host lacks (e.g. no Debian /usr/bin/python3 beside a pyenv
Python): one line per type at start, and its tasks refused at submission with
`task_type_unavailable`, not failing inside the sandbox; the other types keep running."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from saassy.cli.serve import refused_lines
from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch import refusals
from saassy.models import Task, TaskStatus
from saassy.runtime.base import SandboxRefused
from saassy.runtime.process import ProcessRuntime
from saassy.runtime.programs import missing_program
from tests.conftest import SignUp
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import task_row, wait_for_status
from tests.events.support import RecordedLog
from tests.runtime.support import own_work_root, spec_for

HIDDEN = "/nonexistent/python3"
CATALOG = f"""
default_plan = "free"
[plans.free]
name = "Free"
max_task_duration_s = 60
[task_types.hidden]
title = "Hidden"
command = ["{HIDDEN}", "{{workers}}/echo.py"]
[task_types.present]
title = "Present"
command = ["/bin/sh", "-c", "true"]
"""
LINE = f"{HIDDEN} is not on this host (install {HIDDEN} on this host)"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    catalog = tmp_path / "saassy.toml"
    catalog.write_text(CATALOG)
    return settings_factory(config=catalog)


@pytest.fixture
def runtime(tmp_path: Path) -> ProcessRuntime:
    """The rlimits runner: runs on any host, and checks programs as the namespace one does."""
    return ProcessRuntime(work_dir=own_work_root(tmp_path), force_rlimits=True)


def test_what_is_missing_names_the_program_and_what_to_install(tmp_path: Path) -> None:
    not_executable = tmp_path / "tool"
    not_executable.write_text("#!/bin/sh\n")
    not_executable.chmod(0o644)
    assert missing_program([HIDDEN, "x"]) == LINE
    absent_python = "/usr/bin/python3.0-never"
    assert missing_program([absent_python]) == (
        f"{absent_python} is not on this host (apt-get install python3.0-never)"
    )
    assert "is not executable by the sandbox's uid" in str(missing_program([str(not_executable)]))
    assert missing_program(["/bin/sh", "-c", "true"]) is None
    assert missing_program(["python3"]) is None  # looked up on the sandbox's PATH


def test_start_up_says_one_line_per_type_it_cannot_run(
    settings: Settings, runtime: ProcessRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = refused_lines(settings, runtime)  # `saassy dev`'s banner
    assert len(lines) == 1
    assert f"refused   task type hidden: {LINE}" in lines[0]
    recorded = RecordedLog()
    monkeypatch.setattr(refusals, "log", recorded)
    refusals.warn_refused(runtime, settings.catalog, None)  # `saassy api` and `worker`
    assert recorded.entries == [
        ("engine.task_type_refused_here", {"task_type": "hidden", "why": LINE})
    ]


async def test_the_runtime_refuses_to_start_a_missing_program(
    runtime: ProcessRuntime, tmp_path: Path
) -> None:
    spec = spec_for(tmp_path, "print('never')").model_copy(update={"argv": (HIDDEN, "-c", "")})
    with pytest.raises(SandboxRefused) as refused:
        await runtime.start(spec)
    assert refused.value.code == "program_missing"
    assert HIDDEN not in str(refused.value)  # the host's details are the operator's


async def test_submission_is_refused_and_the_other_types_still_run(
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    engine_factory: EngineFactory,
    runtime: ProcessRuntime,
) -> None:
    engine = engine_factory(runtime)
    ctx.task_engine = engine
    await engine.start()
    try:
        account = await signup()
        hidden = {"type": "hidden", "input": {}}
        refused = await client.post("/api/v1/tasks", json=hidden, headers=account.headers)
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert error["code"] == "task_type_unavailable"
        assert error["field"] == "type"
        assert "its program is not installed here" in error["message"]
        async with ctx.sessionmaker() as session:
            org = uuid.UUID(account.organization_id)
            count = select(func.count()).select_from(Task).where(Task.organization_id == org)
            assert await session.scalar(count) == 0  # nothing queued, no quota taken
        present = {"type": "present", "input": {}}
        accepted = await client.post("/api/v1/tasks", json=present, headers=account.headers)
        assert accepted.status_code == 202, accepted.text
        task_id = uuid.UUID(accepted.json()["id"])
        await wait_for_status(ctx.sessionmaker, [task_id])
        assert (await task_row(ctx.sessionmaker, task_id)).status == TaskStatus.succeeded
    finally:
        ctx.task_engine = None
