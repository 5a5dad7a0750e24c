"""The cgroup file formats of both versions, on plain files (this host has no usable v2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from saassy.runtime.base import Limits
from saassy.runtime.cgroups import READ_CHUNK, SandboxCgroup, cgroup_name, tenant_dir_name


def test_v2_limits_and_accounting(tmp_path: Path) -> None:
    directory = tmp_path / "task-1"
    cgroup = SandboxCgroup(2, {"": directory})
    cgroup.create(Limits(memory_mb=256, cpus=1.5, pids=64))
    assert (directory / "memory.max").read_text() == str(256 * 1024 * 1024)
    assert (directory / "memory.swap.max").read_text() == "0"
    assert (directory / "cpu.max").read_text() == "150000 100000"
    assert (directory / "pids.max").read_text() == "64"
    assert cgroup.join_files == [directory / "cgroup.procs"]
    (directory / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (directory / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert cgroup.cpu_seconds() == 2.5
    assert cgroup.peak_memory_bytes() is None  # kernel without memory.peak: sampled instead
    (directory / "memory.peak").write_text("1234\n")
    assert cgroup.peak_memory_bytes() == 1234
    assert cgroup.oom_killed()


def test_v1_limits_and_accounting(tmp_path: Path) -> None:
    controllers = ("memory", "cpu", "cpuacct", "pids", "freezer")
    dirs = {name: tmp_path / name / "task-1" for name in controllers}
    for directory in dirs.values():
        directory.parent.mkdir()
    cgroup = SandboxCgroup(1, dirs)
    cgroup.create(Limits(memory_mb=64, cpus=0.5, pids=16))
    assert (dirs["memory"] / "memory.limit_in_bytes").read_text() == str(64 * 1024 * 1024)
    assert (dirs["cpu"] / "cpu.cfs_quota_us").read_text() == "50000"
    assert (dirs["pids"] / "pids.max").read_text() == "16"
    assert cgroup.join_files == [directory / "tasks" for directory in dirs.values()]
    (dirs["cpuacct"] / "cpuacct.usage").write_text("1500000000\n")
    (dirs["memory"] / "memory.max_usage_in_bytes").write_text("4096\n")
    (dirs["memory"] / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
    )
    assert cgroup.cpu_seconds() == 1.5
    assert cgroup.peak_memory_bytes() == 4096
    assert not cgroup.oom_killed()


def test_names_cannot_escape_the_parent() -> None:
    assert cgroup_name("../../etc") == "_.._etc"
    assert cgroup_name("task-1-attempt-2") == "task-1-attempt-2"
    assert "/" not in cgroup_name("a/b")


def test_v2_passes_its_controllers_down_through_a_tenants_directory(tmp_path: Path) -> None:
    directory = tmp_path / tenant_dir_name("org-1") / "task-1"
    cgroup = SandboxCgroup(2, {"": directory}, tenant=True)
    cgroup.create(Limits(cpus=1))
    subtree = (directory.parent / "cgroup.subtree_control").read_text()
    assert subtree == "+memory +cpu +pids"
    assert (directory / "cpu.max").read_text() == "100000 100000"
    assert cgroup.relative_path == f"{tenant_dir_name('org-1')}/task-1"


def test_a_file_past_one_read_is_read_whole(tmp_path: Path) -> None:
    """`cgroup.procs` of a sandbox that forked thousands: a pid cut at a read's end would be
    another process's, and `kill_all` would signal it."""
    directory = tmp_path / "task-1"
    directory.mkdir()
    pids = list(range(100_000, 100_000 + 20_000))
    (directory / "cgroup.procs").write_text("".join(f"{pid}\n" for pid in pids))
    assert len((directory / "cgroup.procs").read_bytes()) > READ_CHUNK
    assert SandboxCgroup(2, {"": directory}).pids() == pids


def test_an_existing_directory_is_made_again_but_not_a_file(tmp_path: Path) -> None:
    directory = tmp_path / "memory" / "task-1"
    directory.parent.mkdir()
    cgroup = SandboxCgroup(1, {"memory": directory})
    cgroup.make_dirs()
    cgroup.make_dirs()  # a leftover's directory, as a restart finds it
    assert directory.is_dir()
    clash = SandboxCgroup(1, {"memory": tmp_path / "memory" / "tasks"})
    (tmp_path / "memory" / "tasks").write_text("")  # v1's own file of that name
    with pytest.raises(FileExistsError):
        clash.make_dirs()


def test_a_member_listed_as_0_is_not_a_pid_to_signal(tmp_path: Path) -> None:
    """cgroup v2 lists a task outside the reader's pid namespace as 0: `kill_all` must never
    `kill(0)`, which is the server's own process group."""
    directory = tmp_path / "task-1"
    directory.mkdir()
    (directory / "cgroup.procs").write_text("0\n4242\n0\n")
    assert SandboxCgroup(2, {"": directory}).pids() == [4242]
