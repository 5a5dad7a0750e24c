"""How a root platform becomes the sandbox's uid before bwrap: coreutils' `chroot` where it does
this with no name lookup, else util-linux's `setpriv`, each tried once before it is trusted; with
neither, tasks are refused in one line."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from saassy.runtime.process import ProcessRuntime
from saassy.runtime.sandbox import NamespaceSandbox
from saassy.runtime.trampoline import RootDrop, find_root_drop
from tests.runtime.conftest import require_isolation
from tests.runtime.support import run_code, spec_for, without_programs
from tests.runtime.test_abuse import is_sandbox_uid

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="only a root platform drops root")

UID = 65000  # a probe's ids: no sandbox runs as these meanwhile
WHO = """
    import os
    print(os.getuid(), os.getgid(), os.getgroups())
"""


def runtime_here() -> ProcessRuntime:
    """A runtime probing the host as PATH is now (a work root of its own)."""
    return ProcessRuntime(work_dir=Path(tempfile.mkdtemp(prefix="saassy-sandboxes-test-")))


def test_chroot_is_the_drop_where_it_takes_numeric_ids() -> None:
    drop = find_root_drop(UID, UID)
    assert drop == RootDrop(os.path.realpath("/usr/sbin/chroot"), chroot=True)
    assert drop.argv(UID, UID) == [
        drop.path, "--skip-chdir", f"--userspec=+{UID}:+{UID}", "--groups=", "/",
    ]  # fmt: skip


async def test_without_chroot_the_sandbox_drops_root_with_setpriv(workspace: Path) -> None:
    with without_programs("chroot"):
        runtime = runtime_here()
        require_isolation(runtime)
        assert runtime.host is not None
        assert runtime.host.drop is not None
        assert runtime.host.drop.chroot is False
        run = await run_code(runtime, workspace, WHO)
    uid, gid, groups = run.stdout[0].split(" ", 2)
    assert is_sandbox_uid(int(uid))
    assert gid == uid
    assert groups == "[]"


def test_a_chroot_that_does_not_drop_is_not_trusted(tmp_path: Path) -> None:
    """A `chroot` first on PATH that runs the command as it is (root, root's groups): the probe
    sees it and the runtime takes `setpriv` instead."""
    fake = tmp_path / "chroot"
    fake.write_text('#!/bin/sh\nwhile [ "$1" != / ]; do shift; done; shift; exec "$@"\n')
    fake.chmod(0o755)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
        drop = find_root_drop(UID, UID)
    assert drop is not None
    assert drop.chroot is False


@pytest.mark.parametrize("other_may", ["replace the file", "write its dir"])
def test_a_drop_another_user_may_replace_is_not_trusted(tmp_path: Path, other_may: str) -> None:
    """A `chroot` first on PATH that drops faithfully, but which another uid owns (a careless
    PATH entry): it would run as root at every launch, so the runtime takes `setpriv`."""
    fake = tmp_path / "chroot"
    fake.write_text(f'#!/bin/sh\nexec {os.path.realpath("/usr/sbin/chroot")} "$@"\n')
    fake.chmod(0o755)
    if other_may == "replace the file":
        os.chown(fake, UID + 1, UID + 1)
    else:
        tmp_path.chmod(0o777)  # not sticky: anyone may move root's file away and put theirs
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
        setpriv = shutil.which("setpriv")
        drop = find_root_drop(UID, UID)
    assert setpriv is not None
    assert drop == RootDrop(os.path.realpath(setpriv), chroot=False)


def test_with_neither_chroot_nor_setpriv_tasks_are_refused_in_one_line() -> None:
    with without_programs("chroot", "setpriv"):
        runtime = runtime_here()
    assert runtime.host is None
    assert (
        "neither chroot nor setpriv on PATH can drop root to a sandbox uid "
        "(install coreutils or util-linux)"
    ) in runtime.missing


async def test_bwrap_itself_runs_without_privileges_or_a_way_to_gain_them(
    runtime: ProcessRuntime, workspace: Path
) -> None:
    """The drop sets no `no_new_privs` of its own (chroot cannot): bwrap, outside the sandbox as
    its uid, must hold no capability and have set it on itself."""
    require_isolation(runtime)
    code = 'print("ready", flush=True); import time; time.sleep(30)'
    handle = await runtime.start(spec_for(workspace, code))
    try:
        async for line in handle.output():
            if line.data == b"ready":  # bwrap has set the sandbox up: its own set-up is done
                break
        assert isinstance(handle, NamespaceSandbox)
        assert handle._spawned is not None
        lines = Path(f"/proc/{handle._spawned.pid}/status").read_text().splitlines()  # noqa: ASYNC240
    finally:
        await handle.kill()
        await handle.cleanup()
    status = dict(line.split(":", 1) for line in lines)
    assert status["Name"].strip() == "bwrap"
    assert status["Uid"].split() == [str(handle.identity.uid)] * 4
    assert status["Groups"].strip() == ""
    assert status["CapEff"].strip() == status["CapPrm"].strip() == "0000000000000000"
    assert status["NoNewPrivs"].strip() == "1"


def test_a_chroot_on_path_that_fails_is_named_with_its_error(tmp_path: Path) -> None:
    """Where `chroot` is on PATH but cannot drop (busybox's has no `--skip-chdir`; a container
    without CAP_SYS_CHROOT) and `setpriv` is missing, the line says what chroot answered instead
    of claiming neither is on PATH."""
    fake = tmp_path / "chroot"
    fake.write_text("#!/bin/sh\necho \"chroot: unrecognized option '--skip-chdir'\" >&2\nexit 1\n")
    fake.chmod(0o755)
    with without_programs("chroot", "setpriv"), pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
        runtime = runtime_here()
    assert runtime.host is None
    assert (
        f"no way to drop root to a sandbox uid: {fake} failed (chroot: unrecognized option "
        "'--skip-chdir'), no setpriv on PATH (install coreutils or util-linux)"
    ) in runtime.missing


def test_the_drop_in_force_is_described(runtime: ProcessRuntime) -> None:
    """Which drop a root platform uses is stated, so a host on the slower `setpriv` shows it."""
    require_isolation(runtime)
    assert runtime.describe()["root_drop"] == os.path.realpath("/usr/sbin/chroot")


@pytest.fixture
def setuid_bwrap() -> Iterator[Path]:
    """A setuid-root copy of the system's bwrap, where another uid may reach it."""
    system = shutil.which("bwrap")
    if system is None:
        pytest.skip("needs the system's bwrap to copy (apt install bubblewrap)")
    directory = Path(tempfile.mkdtemp(prefix="saassy-setuid-bwrap-"))
    try:
        directory.chmod(0o755)
        binary = directory / "bwrap"
        shutil.copy(system, binary)
        binary.chmod(0o4755)
        yield binary
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def test_before_a_setuid_bwrap_root_is_dropped_with_setpriv(
    setuid_bwrap: Path, workspace: Path
) -> None:
    """A distribution's setuid-root bwrap, exec'd after chroot (no no-new-privs), runs as root
    again: in its setuid mode, which fails here, and no sandbox could be made. setpriv's
    no-new-privs keeps it the sandbox uid's."""
    require_isolation(runtime_here())  # this host makes sandboxes with its own bwrap
    runtime = ProcessRuntime(
        bwrap=str(setuid_bwrap), work_dir=Path(tempfile.mkdtemp(prefix="saassy-sandboxes-test-"))
    )
    assert runtime.host is not None, runtime.summary()
    assert runtime.host.drop is not None
    assert runtime.host.drop.chroot is False
    run = await run_code(runtime, workspace, WHO)
    uid, _, groups = run.stdout[0].split(" ", 2)
    assert is_sandbox_uid(int(uid))
    assert groups == "[]"
