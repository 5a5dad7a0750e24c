"""The private dir a runtime stages its sandboxes' files in, and who owns what is left there.

Each sandbox's staging dir is `<cgroup name>@<owner pid>-<random>` (`work_dir_name`): a
sweep frees those whose platform process is gone, one installation (`instance`) at a time.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from saassy.runtime.cgroups import cgroup_name


def check_instance(instance: str) -> str:
    """An installation's id, as it goes into paths and cgroup names: letters and digits only."""
    if not (instance.isascii() and instance.isalnum()):
        raise ValueError(f"instance id {instance!r}: letters and digits only")
    return instance


def private_work_root(path: Path | None, default_name: str) -> Path:
    """`path`, else `<tmp>/<default_name>`: ours, no symlink, 0711 so the sandbox uid can reach
    its own files in it but list nothing."""
    root = path or Path(tempfile.gettempdir()) / default_name
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    if root.lstat().st_uid != os.geteuid() or root.is_symlink():
        raise RuntimeError(f"{root} is not owned by this user; refusing to use it")
    root.chmod(0o711)
    return root


def owner_alive(pid: int) -> bool:
    """Whether platform process `pid` (or one that took its number since) still runs."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def leftover_of(staging: Path) -> tuple[str, int]:
    """A staging dir's sandbox (its cgroup name) and owner pid (0 when unreadable)."""
    name, _, owner = staging.name.rpartition("@")
    pid = owner.split("-")[0]
    return name, int(pid) if pid.isdigit() else 0


def work_dir_name(name: str) -> str:
    """`<cgroup name>@<owner pid>-<random>`: `@` never occurs in a cgroup name."""
    return f"{cgroup_name(name)}@{os.getpid()}-{secrets.token_hex(4)}"
