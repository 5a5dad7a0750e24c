"""Whatever files a program leaves, the attempt ends, clearly, at a cost bounded by the limits.

Each case runs in the real sandbox: it ends within its timeout + 5 s, storage holds exactly the
objects that have rows, and the task and every download answer 200.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.models import TaskStatus
from tests.conftest import SignUp
from tests.dispatch.outputs_support import (
    OUTPUTS_CATALOG,
    artifacts_listed,
    assert_storage_matches_rows,
    run_code,
    sandbox_engine,
)
from tests.dispatch.runtimes import RUNTIME_KINDS, settings_for
from tests.dispatch.support import task_row

__all__ = ["sandbox_engine"]

LONG_NAME = "n" * 251 + ".txt"  # 255 bytes: NAME_MAX


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], runtime_kind: str, tmp_path: Path
) -> Settings:
    types = ["writer", "hoarder"]
    return settings_for(runtime_kind, settings_factory, OUTPUTS_CATALOG, types, tmp_path)


@dataclass(frozen=True)
class Case:
    code: str
    status: TaskStatus
    error_code: str | None = None
    error_says: str | None = None
    kept: tuple[str, ...] = ()
    type: str = "writer"


WRITE = """
    import os
    out = os.environ["SAASSY_OUTPUT"]
    open(os.path.join(os.fsencode(out), {name!r}), "wb").write(b"hostile")
    open(out + "/good.txt", "w").write("fine")
"""

CASES = {
    "non-UTF-8 name": Case(
        WRITE.format(name=b"bad-\xff.txt"), TaskStatus.succeeded, kept=("good.txt",)
    ),
    "CR/LF name": Case(
        WRITE.format(name=b"evil\r\nX-Injected: 1.txt"), TaskStatus.succeeded, kept=("good.txt",)
    ),
    "CJK name": Case(
        WRITE.format(name="文件.txt".encode()), TaskStatus.succeeded, kept=("good.txt", "文件.txt")
    ),
    "255-byte name": Case(
        WRITE.format(name=LONG_NAME.encode()), TaskStatus.succeeded, kept=("good.txt", LONG_NAME)
    ),
    "100,000 empty files": Case(
        """
        import os
        out = os.environ["SAASSY_OUTPUT"]
        for n in range(100_000):
            os.close(os.open(f"{out}/{n}", os.O_CREAT | os.O_WRONLY))
        """,
        TaskStatus.failed,
        "exit_code",  # the sandbox's tmpfs runs out of inodes first, then max_files refuses
        "its output was not kept: it wrote more than 1000 files and dirs",
    ),
    "1,500 empty files, then success": Case(
        """
        import os
        out = os.environ["SAASSY_OUTPUT"]
        for n in range(1_500):
            os.close(os.open(f"{out}/{n}", os.O_CREAT | os.O_WRONLY))
        """,
        TaskStatus.failed,
        "output_limit",
        "its output was not kept: it wrote more than 1000 files and dirs",
    ),
    "a sparse TiB, hard links and a sparse events file": Case(
        """
        import os
        out = os.environ["SAASSY_OUTPUT"]
        with open(out + "/sparse.bin", "wb") as sparse:
            sparse.truncate(2**40)
        open(out + "/one.bin", "wb").write(b"x" * 2**20)
        for n in range(5):
            os.link(out + "/one.bin", f"{out}/link-{n}.bin")
        open(os.environ["SAASSY_EVENTS"], "r+b").truncate(3000 * 2**20)
        open(out + "/good.txt", "w").write("fine")
        """,
        TaskStatus.succeeded,
        kept=("good.txt",),  # what the tmpfs cap does not bound never reaches the host
    ),
    "10 GiB to the output dir": Case(
        """
        import os
        block = b"x" * 2**20
        with open(os.environ["SAASSY_OUTPUT"] + "/huge.bin", "wb") as huge:
            for _ in range(10 * 1024):
                huge.write(block)
        """,
        TaskStatus.failed,
        "exit_code",  # ENOSPC at disk_mb, then the output is past max_mb
        "its output was not kept: it wrote more than 32 MB of files",
    ),
    "90 MB file, then out of memory": Case(
        """
        import os
        block = b"x" * 2**20
        with open(os.environ["SAASSY_OUTPUT"] + "/big.bin", "wb") as big:
            for _ in range(90):
                big.write(block)
        hog = [bytearray(2**20) for _ in range(512)]
        """,
        TaskStatus.failed,
        "out_of_memory",  # tmpfs pages are charged to the task's memory
        "its output was not kept: it wrote more than 50 MB of files",
        type="hoarder",
    ),
}


@pytest.mark.parametrize("runtime_kind", RUNTIME_KINDS, indirect=True)
@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_hostile_files_end_cleanly(
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    sandbox_engine: TaskEngine,
    case: Case,
) -> None:
    account = await signup()
    task_id = await run_code(
        ctx, sandbox_engine, account.organization_id, case.code, type=case.type
    )

    task = await task_row(ctx.sessionmaker, task_id)
    assert task.status == case.status, task.error
    assert task.error_code == case.error_code
    if case.error_says is not None:
        assert task.error is not None
        assert case.error_says in task.error
    await assert_storage_matches_rows(ctx, sandbox_engine)
    shown = await client.get(f"/api/v1/tasks/{task_id}", headers=account.headers)
    assert shown.status_code == 200, shown.text
    items = await artifacts_listed(client, account.headers, task_id)
    assert sorted(item["path"] for item in items) == sorted(case.kept)
    for item in items:
        download = await client.get(
            f"/api/v1/tasks/{task_id}/artifacts/{item['id']}", headers=account.headers
        )
        assert download.status_code == 200
        assert download.content == (b"fine" if item["path"] == "good.txt" else b"hostile")


async def test_a_cjk_name_is_downloaded_under_its_own_name(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, sandbox_engine: TaskEngine
) -> None:
    account = await signup()
    task_id = await run_code(
        ctx, sandbox_engine, account.organization_id, WRITE.format(name="文件.txt".encode())
    )
    [item] = [
        i
        for i in await artifacts_listed(client, account.headers, task_id)
        if i["path"] != "good.txt"
    ]
    download = await client.get(
        f"/api/v1/tasks/{task_id}/artifacts/{item['id']}", headers=account.headers
    )
    assert download.status_code == 200
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"__.txt\"; filename*=UTF-8''%E6%96%87%E4%BB%B6.txt"
    )


async def test_the_artifact_list_is_paginated(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, sandbox_engine: TaskEngine
) -> None:
    account = await signup()
    code = """
        import os
        for n in range(7):
            open(f"{os.environ['SAASSY_OUTPUT']}/{n}.txt", "w").write(str(n))
    """
    task_id = await run_code(ctx, sandbox_engine, account.organization_id, code)
    first = await client.get(
        f"/api/v1/tasks/{task_id}/artifacts", headers=account.headers, params={"limit": 3}
    )
    assert len(first.json()["items"]) == 3
    assert first.json()["next_cursor"] is not None
    pages = await artifacts_listed(client, account.headers, task_id, limit=3)
    assert sorted(item["path"] for item in pages) == [f"{n}.txt" for n in range(7)]
    assert len({item["id"] for item in pages}) == 7
    bad = await client.get(
        f"/api/v1/tasks/{task_id}/artifacts", headers=account.headers, params={"cursor": "x"}
    )
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_cursor")
    assert bad.json()["error"]["field"] == "cursor"
    other = await client.get(f"/api/v1/tasks/{uuid.uuid4()}/artifacts", headers=account.headers)
    assert other.status_code == 404


@pytest.mark.parametrize("runtime_kind", RUNTIME_KINDS, indirect=True)
async def test_the_log_says_which_files_were_not_kept_and_why(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, sandbox_engine: TaskEngine
) -> None:
    account = await signup()
    code = WRITE.format(name=b"bad-\xff.txt") + "    os.symlink('/etc/passwd', out + '/link')\n"
    task_id = await run_code(ctx, sandbox_engine, account.organization_id, code)
    assert (await task_row(ctx.sessionmaker, task_id)).status == TaskStatus.succeeded
    logs = await client.get(f"/api/v1/tasks/{task_id}/logs", headers=account.headers)
    notes = sorted(line for line in logs.text.splitlines() if "not kept" in line)
    assert len(notes) == 2, logs.text
    assert notes[0].startswith("[saassy] not kept as an artifact: bad-")
    assert notes[1].startswith("[saassy] not kept as an artifact: link (")
