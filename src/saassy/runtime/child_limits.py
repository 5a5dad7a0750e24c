"""The per-process limits a sandbox's first process gets before bwrap (launcher.py does the
setting): rlimits standing in for the cgroup a host without writable cgroups lacks, and behind a
cgroup's pids.max a second fence on the number of processes. Children inherit them."""

from __future__ import annotations

import math
import os
import resource

from saassy.runtime.base import Limits

Rlimits = tuple[tuple[int, int], ...]  # (resource.RLIMIT_*, soft and hard limit)

NO_CORE_DUMPS: Rlimits = ((resource.RLIMIT_CORE, 0),)


def rlimits(limits: Limits, processes: int) -> Rlimits:
    """Without writable cgroups: address space, CPU time (the timeout at the allowed cores, and
    a second), and `processes` processes of the sandbox's uid (`RLIMIT_NPROC`)."""
    cpu_s = math.ceil(limits.timeout_s * max(limits.cpus, 1.0)) + 1
    return (
        (resource.RLIMIT_AS, limits.memory_mb * 1024 * 1024),
        (resource.RLIMIT_CPU, cpu_s),
        *process_limit(processes),
    )


def process_limit(processes: int) -> Rlimits:
    """RLIMIT_NPROC at `processes`, and no core dumps (a dump would be written on the host)."""
    return ((resource.RLIMIT_NPROC, processes), *NO_CORE_DUMPS)


def counts_uid_threads() -> bool:
    """Whether a launch counts the threads its uid runs (`_processes`): a non-root platform's
    sandboxes share its uid, and RLIMIT_NPROC counts them all."""
    return os.geteuid() != 0
