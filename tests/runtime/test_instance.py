"""Two installations on one host: each has its own work root and cgroup parent, and its sweep
frees only its own leftovers."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from saassy.kit.instance import INSTANCE_FILE, InstanceIdInvalid, instance_id
from saassy.runtime.process import ProcessRuntime
from tests.runtime.conftest import require_isolation
from tests.runtime.support import leave_burning_sandbox


def test_the_instance_id_is_made_once_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = instance_id(data_dir)
    assert instance_id(data_dir) == first
    assert (data_dir / INSTANCE_FILE).read_text().strip() == first
    assert instance_id(tmp_path / "other") != first
    assert sorted(p.name for p in data_dir.iterdir()) == [INSTANCE_FILE]  # no draft left


def test_a_damaged_instance_id_is_refused(tmp_path: Path) -> None:
    (tmp_path / INSTANCE_FILE).write_text("../../etc\n")
    with pytest.raises(InstanceIdInvalid, match="delete it to have a new one made"):
        instance_id(tmp_path)


def _free(runtime: ProcessRuntime) -> None:
    shutil.rmtree(runtime.work_root, ignore_errors=True)
    if runtime.host is not None and runtime.host.cgroups is not None:
        for parent in runtime.host.cgroups.parents.values():
            with contextlib.suppress(OSError):
                parent.rmdir()


async def test_an_installation_never_sweeps_another_ones_sandboxes(workspace: Path) -> None:
    ours, theirs = (f"{tag}{secrets.token_hex(4)}" for tag in ("ours", "them"))
    mine, other = ProcessRuntime(instance=ours), ProcessRuntime(instance=theirs)
    try:
        require_isolation(mine)
        assert mine.host is not None
        assert other.host is not None
        assert mine.host.cgroups is not None
        assert other.host.cgroups is not None
        assert mine.work_root != other.work_root
        assert set(mine.host.cgroups.parents.values()).isdisjoint(
            other.host.cgroups.parents.values()
        )
        name = f"instance-{workspace.name}-{os.getpid()}"
        await leave_burning_sandbox(workspace, name, instance=theirs)  # its platform died
        left = list(other.work_root.glob(f"{name}@*"))
        assert len(left) == 1

        await mine.sweep()
        assert left[0].exists()
        assert other.host.cgroups.existing(name) is not None

        assert await other.sweep() >= 1
        assert not left[0].exists()
        assert other.host.cgroups.existing(name) is None
    finally:
        for runtime in (mine, other):
            await runtime.sweep()
            _free(runtime)


def test_a_runtime_starting_while_other_sandboxes_come_and_go_still_isolates(
    tmp_path: Path,
) -> None:
    """A worker (re)started on a busy host probes bwrap while other processes' sandboxes mount
    and unmount their tmpfs: the probe must not fail on them (it did, 1 in ~40, and the whole
    process then refused every task as `isolation_unavailable`)."""
    first = ProcessRuntime()
    require_isolation(first)
    assert first.host is not None
    if not first.host.can_mount:
        pytest.skip("this host cannot mount a tmpfs")  # the others' churn needs one
    stop = threading.Event()
    mount_bin, umount_bin = shutil.which("mount") or "mount", shutil.which("umount") or "umount"

    def churn(directory: Path) -> None:  # another worker's sandboxes, starting and ending
        while not stop.is_set():
            directory.mkdir()
            mount = [mount_bin, "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(directory)]
            subprocess.run(mount, check=True)  # noqa: S603 - fixed argv
            subprocess.run([umount_bin, str(directory)], check=True)  # noqa: S603 - fixed argv
            directory.rmdir()

    others = [threading.Thread(target=churn, args=(tmp_path / f"s{i}",)) for i in range(12)]
    for other in others:
        other.start()
    try:
        levels = [ProcessRuntime().isolation for _ in range(60)]
    finally:
        stop.set()
        for other in others:
            other.join()
    assert set(levels) == {first.isolation}
