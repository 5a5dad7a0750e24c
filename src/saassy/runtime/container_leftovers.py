"""What a container leaves on the host once dockerd has removed it: its staging tmpfs and the
cgroups made for it."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from saassy.runtime import mounts
from saassy.runtime.cgroups import CgroupLayout, SandboxCgroup, remove_empty_tenant_dirs


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


def hold_tenant_dirs(cgroup_parent: str, cgroup: SandboxCgroup) -> None:
    """A tenant's sandbox's directory in the hierarchies dockerd makes it in and we do not use
    (cpuset, blkio, devices ...), made before dockerd does: runc would make the tenant's there
    and its own below it, and the tenant's other sandboxes ending meanwhile would remove the
    tenant's as empty, failing the start. Where dockerd has made nothing yet, nothing ends."""
    if not cgroup.tenant:
        return
    relative = Path(cgroup.relative_path)
    for root in cgroup_roots():
        parent = root / cgroup_parent.lstrip("/")
        if not parent.is_dir():
            continue
        # As v1's: a plain mkdir, no controllers to pass on in a hierarchy we do not use. One
        # dockerd cannot write in either is not in its way.
        with contextlib.suppress(OSError):
            SandboxCgroup(1, {"": parent / relative}, tenant=True).make_dirs()


def remove_empty_tenants(cgroup_parent: str, layout: CgroupLayout) -> None:
    """Tenants' directories left empty by a killed platform, ours and dockerd's beside them."""
    layout.remove_empty_tenants()
    for root in cgroup_roots():
        remove_empty_tenant_dirs(root / cgroup_parent.lstrip("/"))


def cgroup_roots() -> list[Path]:
    """Every cgroup hierarchy's mount point."""
    roots = []
    with contextlib.suppress(OSError), open("/proc/self/mounts") as table:
        for line in table:
            fields = line.split()
            if len(fields) >= 3 and fields[2] in {"cgroup", "cgroup2"}:
                roots.append(Path(fields[1]))
    return roots
