"""The peer a user would pick instead of Saassy: Celery + Redis running the echo program in a
plain bubblewrap command line, with the same namespaces, binds and limits, and no Saassy code.

Started by bench/celery_run.py as `celery -A bench.celery_bwrap worker` (prefork, the same
concurrency as Saassy's executor). Each task gets a work dir (input, output, events), a cgroup
per controller with the same memory, CPU and pids limits, and runs as `nobody` through `chroot`
with numeric ids (else `setpriv`), as the runtime drops root and as a careful Celery user would
write it. What it leaves out that the runtime does: a seccomp filter (a compiled BPF program
nobody writes by hand), a uid per sandbox, synthetic /etc files.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from celery import Celery  # type: ignore[import-untyped]

from bench.echo import (
    CPUS,
    MEMORY_MB,
    PIDS,
    SANDBOX_ENV,
    TIMEOUT_S,
    plain_bwrap_argv,
    prepare_work_dir,
)

REDIS_URL = os.environ.get("SAASSY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
BWRAP = os.environ.get("SAASSY_BENCH_BWRAP") or shutil.which("bwrap") or "bwrap"
NOBODY = 65534
# To nobody, no groups: coreutils' chroot with numeric ids looks no name up (setpriv does).
# By path: the sandbox's environment has no /usr/sbin on PATH.
CHROOT = shutil.which("chroot")
DROP = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"]
if CHROOT is not None:
    DROP = [CHROOT, "--skip-chdir", f"--userspec=+{NOBODY}:+{NOBODY}", "--groups=", "/"]
CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "saassy-bench-celery-bwrap"

app = Celery("saassy_bench_peer", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)


def _cgroups(name: str) -> list[tuple[Path, dict[str, str], str]]:
    """(directory, limits to write, the file a process joins through) per controller."""
    memory, quota = str(MEMORY_MB * 1024 * 1024), str(int(CPUS * 100_000))
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # cgroup v2: one tree
        limits = {"memory.max": memory, "pids.max": str(PIDS), "cpu.max": f"{quota} 100000"}
        return [(CGROUP_ROOT / PARENT / name, limits, "cgroup.procs")]
    return [
        (CGROUP_ROOT / "memory" / PARENT / name, {"memory.limit_in_bytes": memory}, "tasks"),
        (CGROUP_ROOT / "pids" / PARENT / name, {"pids.max": str(PIDS)}, "tasks"),
        (CGROUP_ROOT / "cpu" / PARENT / name, {"cpu.cfs_quota_us": quota}, "tasks"),
    ]


def _make_cgroups(groups: list[tuple[Path, dict[str, str], str]]) -> None:
    for directory, limits, _ in groups:
        if not directory.parent.exists():
            directory.parent.mkdir(exist_ok=True)
            if (directory.parent / "cgroup.subtree_control").exists():
                (directory.parent / "cgroup.subtree_control").write_text("+memory +pids +cpu")
        directory.mkdir()
        for file, value in limits.items():
            (directory / file).write_text(value)


def _remove_cgroups(groups: list[tuple[Path, dict[str, str], str]]) -> None:
    for directory, _, _ in groups:
        for _ in range(100):  # the sandbox's last processes may still be on their way out
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.001)


@app.task(name="bench.echo_in_bwrap")  # type: ignore[untyped-decorator]
def echo_in_bwrap(payload: Any) -> dict[str, Any]:
    """The echo program in a plain bwrap sandbox; returns its exit code and result.json."""
    name = f"peer-{uuid.uuid4().hex}"
    work = Path(tempfile.gettempdir()) / "saassy-bench-celery-bwrap" / name
    groups = _cgroups(name)
    try:
        prepare_work_dir(work, payload, owner=NOBODY)
        _make_cgroups(groups)

        def join_cgroups() -> None:  # in the child, before the drop to nobody
            for directory, _, joins in groups:
                (directory / joins).write_text(str(os.getpid()))

        process = subprocess.Popen(  # noqa: S603 - our own fixed command line
            [*DROP, *plain_bwrap_argv(BWRAP, work)],
            env=SANDBOX_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=join_cgroups,
        )
        try:
            _, stderr = process.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        result_file = work / "output" / "result.json"
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        return {"exit_code": process.returncode, "result": result, "stderr": stderr.decode()[-500:]}
    finally:
        _remove_cgroups(groups)
        shutil.rmtree(work, ignore_errors=True)
