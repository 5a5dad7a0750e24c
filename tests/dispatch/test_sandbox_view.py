"""What a real task sees of the host through the whole engine: no path of the platform's (data
dir, work root, the example programs' dir) and not the server's pid, anywhere it can look."""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from saassy.config import Settings
from saassy.context import AppContext
from saassy.models import TaskStatus
from saassy.runtime.process import ProcessRuntime
from tests.conftest import SignUp
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import task_row, wait_for_status
from tests.runtime.conftest import require_isolation
from tests.runtime.support import own_work_root

LOOK_AROUND = """
import json, os
def read(path):
    try:
        return open(path, "rb").read().replace(b"\\0", b" ").decode()
    except OSError as exc:
        return exc.strerror
seen = {"env": dict(os.environ)}
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    seen[pid] = [read(f"/proc/{pid}/cmdline"), read(f"/proc/{pid}/environ")]
json.dump(seen, open("result.json", "w"))
"""


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        'default_plan = "small"\n[plans.small]\nname = "Small"\n'
        '[task_types.python]\ntitle = "Python"\n'
        'command = ["/usr/bin/python3", "-I", "{workers}/python_runner.py"]\n'
        "resources = { memory_mb = 128, cpus = 0.5, pids = 32, disk_mb = 16 }\n"
    )
    return settings_factory(config=catalog)


async def test_a_task_sees_no_host_path_and_no_server_pid(
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    engine_factory: EngineFactory,
    tmp_path: Path,
) -> None:
    runtime = ProcessRuntime(work_dir=own_work_root(tmp_path))
    require_isolation(runtime)
    engine = engine_factory(runtime)
    await engine.start()
    account = await signup()
    submitted = await client.post(
        "/api/v1/tasks",
        headers=account.headers,
        json={"type": "python", "input": {"code": LOOK_AROUND}},
    )
    assert submitted.status_code == 202, submitted.text
    task_id = uuid.UUID(submitted.json()["id"])
    await wait_for_status(ctx.sessionmaker, [task_id], timeout_s=60)
    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == TaskStatus.succeeded, task.error
    seen = task.result
    assert seen["env"]["PWD"] == "/tmp"  # noqa: S108 - the sandbox's own
    assert seen["1"][0].startswith("./bwrap --args ")  # the sandbox's pid 1: bwrap's init
    assert "/usr/bin/python3 -I /saassy/programs/0/python_runner.py" in seen["1"][0]
    text = json.dumps(seen)
    workers = engine.executor.deps.workers_dir  # type: ignore[attr-defined]
    for host_path in (ctx.settings.data_dir.resolve(), runtime.work_root, workers, tmp_path):
        assert str(host_path) not in text
    assert not re.search(rf"\b{os.getpid()}\b", text)
