"""What a container leaves on the host once dockerd has removed it: its staging tmpfs and the
cgroups made for it."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from saassy.runtime import mounts
from saassy.runtime.cgroups import SandboxCgroup


def remove_staging(path: Path) -> None:
    with contextlib.suppress(OSError):
        mounts.unmount(path)
    shutil.rmtree(path, ignore_errors=True)


def remove_cgroups(cgroup_parent: str, cgroup: SandboxCgroup) -> None:
    """Our cgroup and what dockerd made beside it in controllers we do not use (cpuset,
    blkio, devices ...): its container's child is gone once the container is removed. A
    tenant's directory there goes with its last sandbox, as ours does."""
    cgroup.remove()
    relative = Path(cgroup.relative_path)
    for root in cgroup_roots():
        made = root / cgroup_parent.lstrip("/") / relative
        with contextlib.suppress(OSError):
            made.rmdir()
        if cgroup.tenant:
            with contextlib.suppress(OSError):  # busy: another sandbox of the tenant runs
                made.parent.rmdir()


def cgroup_roots() -> list[Path]:
    """Every cgroup hierarchy's mount point."""
    roots = []
    with contextlib.suppress(OSError), open("/proc/self/mounts") as table:
        for line in table:
            fields = line.split()
            if len(fields) >= 3 and fields[2] in {"cgroup", "cgroup2"}:
                roots.append(Path(fields[1]))
    return roots
