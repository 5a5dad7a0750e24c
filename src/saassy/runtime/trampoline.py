"""How `/bin/sh` launches a sandbox: it joins the sandbox's cgroups, sets the per-process limits
that stand in for cgroups where the host has none writable, and execs the rest of the chain."""

from __future__ import annotations

import functools
import math
import os
import subprocess

from saassy.runtime.base import Limits

# Join every cgroup given before the first "--" (see `SandboxCgroup.join_files`), set the
# `ulimit` option/value pairs given before the second, then exec the rest; exit 125 on a failure.
TRAMPOLINE = (
    "unset PWD OLDPWD; "  # the host's cwd: nothing inside may see it (/proc/1/environ)
    'while [ "$1" != -- ]; do echo 0 > "$1" || exit 125; shift; done; shift; '
    'while [ "$1" != -- ]; do ulimit "$1" "$2" || exit 125; shift 2; done; shift; '
    'ulimit -c 0; exec "$@"'
)


def ulimits(limits: Limits, processes: tuple[str, int] | None) -> list[str]:
    """Per-process limits standing in for the cgroup a host without writable cgroups lacks:
    address space (KiB) and CPU time (s), which every POSIX shell spells alike, and the number
    of processes where the shell can set it."""
    cpu_s = math.ceil(limits.timeout_s * max(limits.cpus, 1.0)) + 1
    return ["-v", str(limits.memory_mb * 1024), "-t", str(cpu_s), *process_limit(processes)]


def process_limit(processes: tuple[str, int] | None) -> list[str]:
    """`ulimit` arguments for RLIMIT_NPROC (the shell's flag and the count), if it has one."""
    return [processes[0], str(processes[1])] if processes is not None else []


@functools.cache
def process_limit_flag() -> str | None:
    """The shell's `ulimit` flag for RLIMIT_NPROC: `-u` in bash and busybox, `-p` in dash (where
    bash's `-p` is the pipe size and cannot be set, so a wrong guess fails instead)."""
    for flag in ("-u", "-p"):
        done = subprocess.run(  # noqa: S603 - a fixed shell command
            ["/bin/sh", "-c", f"ulimit {flag} 1000 && [ $(ulimit {flag}) = 1000 ]"],
            capture_output=True,
            check=False,
        )
        if done.returncode == 0:
            return flag
    return None


def counts_uid_threads() -> bool:
    """Whether a launch counts the threads its uid runs (`_processes`): a non-root platform's
    sandboxes share its uid, and RLIMIT_NPROC counts them all."""
    return os.geteuid() != 0
