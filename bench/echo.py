"""The worker program every compared path runs: a small Python `echo`, and its plain sandbox.

It takes the clock first thing (the sandbox has no time namespace: its CLOCK_MONOTONIC and
CLOCK_REALTIME are the host's), reads its input, prints a line and writes `result.json` with the
input and the clock readings, so the bench can tell when the program itself began to run.

This module imports nothing of Saassy: the Celery peer (bench/celery_bwrap.py) builds its sandbox
from it alone, as a Celery user would write it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PYTHON = "/usr/bin/python3"
ECHO_PROGRAM = """\
import time
started = {"monotonic": time.monotonic(), "realtime": time.time()}
import json, os
with open(os.environ["SAASSY_INPUT"]) as f:
    data = json.load(f)
print("echo", len(json.dumps(data)), "bytes", flush=True)
with open(os.path.join(os.environ["SAASSY_OUTPUT"], "result.json"), "w") as f:
    json.dump({"echo": data, "started": started}, f)
"""
ECHO_ARGV = (PYTHON, "-c", ECHO_PROGRAM)
ECHO_INPUT: dict[str, Any] = {"message": "hello", "numbers": list(range(16))}
# What the runtime's sandboxes see (saassy/runtime/environment.py), the SAASSY_* contract included.
SANDBOX_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "HOME": "/tmp",  # noqa: S108 - inside the sandbox: its own private tmpfs
    "TMPDIR": "/tmp",  # noqa: S108
    "SAASSY_INPUT": "/saassy/input.json",
    "SAASSY_OUTPUT": "/saassy/output",
    "SAASSY_EVENTS": "/saassy/events.jsonl",
}
# The same limits in every path: memory, CPU, pids, the tmpfs size, the timeout.
MEMORY_MB, CPUS, PIDS, DISK_MB, TIMEOUT_S = 128, 0.5, 32, 16, 30
SYSTEM_DIRS = ("/bin", "/sbin", "/lib", "/lib64")
ETC_FILES = (
    "/etc/alternatives", "/etc/ca-certificates", "/etc/ld.so.cache", "/etc/ld.so.conf",
    "/etc/ld.so.conf.d", "/etc/localtime", "/etc/mime.types", "/etc/nsswitch.conf",
    "/etc/python3", "/etc/ssl",
)  # fmt: skip


def started_at(result: Any) -> tuple[float, float]:
    """(CLOCK_MONOTONIC, CLOCK_REALTIME) when the program began, from its result.json."""
    if not isinstance(result, dict) or not isinstance(result.get("started"), dict):
        raise ValueError(f"not the echo program's result: {result!r:.200}")
    return float(result["started"]["monotonic"]), float(result["started"]["realtime"])


def plain_bwrap_argv(bwrap: str, work: Path) -> list[str]:
    """The sandbox a Celery user would write by hand: the runtime's namespaces and binds
    (docs/runtime.md), the same tmpfs sizes, the work dir's input, output and events files."""
    size = str(DISK_MB * 1024 * 1024)
    argv = [bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    argv += ["--unshare-user", "--disable-userns", "--ro-bind", "/usr", "/usr"]
    for directory in SYSTEM_DIRS:
        if os.path.islink(directory):
            argv += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            argv += ["--ro-bind", directory, directory]
    for path in (*ETC_FILES, *(str(p) for p in sorted(Path("/etc").glob("python3.*")))):
        argv += ["--ro-bind-try", path, path]
    # Inside the sandbox: a private tmpfs at each (S108 is about shared host temp dirs).
    argv += ["--proc", "/proc", "--dev", "/dev", "--size", size, "--tmpfs", "/tmp"]  # noqa: S108
    argv += ["--size", size, "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]  # noqa: S108
    argv += ["--ro-bind", str(work / "input.json"), "/saassy/input.json"]
    argv += ["--bind", str(work / "output"), "/saassy/output"]
    argv += ["--bind", str(work / "events.jsonl"), "/saassy/events.jsonl"]
    argv += ["--remount-ro", "/", "--chdir", "/tmp", "--", *ECHO_ARGV]  # noqa: S108
    return argv


def prepare_work_dir(work: Path, payload: Any, owner: int | None = None) -> None:
    """input.json, an empty output dir and events file; `owner` (a uid) may write the latter."""
    (work / "output").mkdir(parents=True)
    (work / "input.json").write_text(json.dumps(payload))
    (work / "events.jsonl").touch()
    work.chmod(0o755)
    if owner is not None:
        for path in (work / "output", work / "events.jsonl"):
            os.chown(path, owner, owner)
