"""A size-capped tmpfs per sandbox: the simplest total-size cap the kernel enforces.

Mounted by the platform (root) on the sandbox's private work dir, which holds its output dir,
events file, /tmp and /dev/shm, all bound into the sandbox: one cap (`disk_mb`, and a number of
files) on everything it can write. Output is copied out after the run and the tmpfs unmounted.
Writes beyond the size fail with ENOSPC inside the sandbox. tmpfs pages are charged to the
writer's memory cgroup, so what it writes also counts against the memory limit.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from pathlib import Path

MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MNT_DETACH = 2

FILES_BASE = 10_000
FILES_PER_MB = 16

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount_tmpfs(
    target: Path,
    *,
    size_bytes: int,
    uid: int,
    gid: int,
    mode: int = 0o700,
    inodes: int | None = None,
) -> None:
    """Mount a tmpfs of at most `size_bytes` (and `inodes` files and dirs) on `target`, its root
    owned by uid:gid."""
    options = f"size={size_bytes},mode={mode:04o},uid={uid},gid={gid}"
    if inodes is not None:
        options += f",nr_inodes={inodes}"
    flags = MS_NOSUID | MS_NODEV
    if _libc.mount(b"tmpfs", os.fsencode(target), b"tmpfs", flags, options.encode()) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount tmpfs on {target}: {os.strerror(errno)}")


def file_cap(disk_mb: int) -> int:
    """How many files and dirs a sandbox of `disk_mb` may create (tmpfs `nr_inodes`): enough for
    any real program's temporary files, few enough that collecting its output stays cheap."""
    return FILES_BASE + FILES_PER_MB * disk_mb


def unmount(target: Path) -> None:
    """Lazily detach `target`; a no-op when nothing is mounted there."""
    if _libc.umount2(os.fsencode(target), MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        if errno not in {22, 2}:  # EINVAL: not a mount point; ENOENT: gone
            raise OSError(errno, f"umount {target}: {os.strerror(errno)}")


def can_mount_tmpfs(probe_dir: Path) -> bool:
    """Whether this process may mount (root, or CAP_SYS_ADMIN in the host namespace)."""
    probe = probe_dir / f".mount-probe-{os.getpid()}"
    try:
        probe.mkdir(parents=True, exist_ok=True)
        mount_tmpfs(probe, size_bytes=1024 * 1024, uid=os.getuid(), gid=os.getgid())
    except OSError:
        return False
    else:
        unmount(probe)
        return True
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()
