"""How `/bin/sh` launches a sandbox: it joins the sandbox's cgroups, sets the per-process limits
that stand in for cgroups where the host has none writable, and execs the rest of the chain."""

from __future__ import annotations

import functools
import math
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class RootDrop:
    """The command a root platform's launch execs to become the sandbox's uid and gid, with no
    supplementary group, before it execs bwrap (which then sets no-new-privs on itself and drops
    every capability inside).

    coreutils' `chroot` onto `/` (`--skip-chdir`) with numeric ids (`+uid`) looks nothing up;
    util-linux's `setpriv` takes each id for a name first, an NSS lookup that loads
    `libnss_systemd` and its libraries at every launch (~1 ms of CPU and of latency a sandbox).
    So `chroot` where it does this, else `setpriv`."""

    path: str
    chroot: bool

    def argv(self, uid: int, gid: int) -> list[str]:
        if self.chroot:
            return [self.path, "--skip-chdir", f"--userspec=+{uid}:+{gid}", "--groups=", "/"]
        return [
            *[self.path, "--reuid", str(uid), "--regid", str(gid), "--clear-groups"],
            *["--no-new-privs", "--bounding-set", "-all"],
        ]


# What the probe reads of itself: pure sh, so it needs nothing but the shell.
_IDS = 'while read -r key value; do case $key in Uid:|Gid:|Groups:) echo "$key $value";; esac; done'


@dataclass(frozen=True)
class NoRootDrop:
    """Why no drop will do, in one line: what each one on PATH answered, what to install."""

    tried: tuple[str, ...]  # "<path> failed (<why>)", or "no <name> on PATH"

    def __str__(self) -> str:
        advice = "(install coreutils or util-linux)"
        if all(why.startswith("no ") for why in self.tried):
            return f"neither chroot nor setpriv on PATH can drop root to a sandbox uid {advice}"
        return f"no way to drop root to a sandbox uid: {', '.join(self.tried)} {advice}"


def find_root_drop(uid: int, gid: int, *, setuid_bwrap: bool = False) -> RootDrop | NoRootDrop:
    """The cheapest drop on PATH that only root may replace and that, tried once as
    `uid`/`gid`, leaves exactly those ids and no group; else what each one did. Before a
    setuid-root bwrap only `setpriv`: its no-new-privs keeps the setuid bit from making bwrap
    root again (chroot sets no such flag)."""
    tried = []
    drops = (("setpriv", False),) if setuid_bwrap else (("chroot", True), ("setpriv", False))
    for name, chroot in drops:
        found = shutil.which(name)
        if found is None:
            tried.append(f"no {name} on PATH")
            continue
        drop = RootDrop(os.path.realpath(found), chroot)
        if not only_root_may_replace(drop.path):
            tried.append(f"{drop.path} is not root's alone (it or a dir above is another's)")
            continue
        failure = _drop_failure(drop, uid, gid)
        if failure is None:
            return drop
        tried.append(f"{drop.path} failed ({failure})")
    return NoRootDrop(tuple(tried))


def _drop_failure(drop: RootDrop, uid: int, gid: int) -> str | None:
    """Why `drop` does not leave exactly `uid`, `gid` and no group; None when it does."""
    wanted = [f"Uid: {uid} {uid} {uid} {uid}", f"Gid: {gid} {gid} {gid} {gid}", "Groups:"]
    try:
        done = subprocess.run(  # noqa: S603 - a binary found on PATH, fixed arguments
            [*drop.argv(uid, gid), "/bin/sh", "-c", f"{_IDS} < /proc/self/status"],
            capture_output=True,
            timeout=10,
            check=False,
            env={},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    said = [" ".join(line.split()) for line in done.stdout.decode(errors="replace").splitlines()]
    if done.returncode != 0:
        said_why = done.stderr.decode(errors="replace").strip().splitlines()
        return said_why[0] if said_why else f"exit {done.returncode}"
    if said != wanted:
        return f"it left {'; '.join(said) or 'no ids'}, not uid {uid}, gid {gid}, no groups"
    return None


def only_root_may_replace(path: str) -> bool:
    """Whether `path` and every dir above it are root's and writable by no one else (a sticky
    dir, as /tmp, lets no one else move root's entry in it): the drop runs as root at every
    launch (and the probe already runs it), so a copy another user may swap, first on a
    careless PATH, would hand them root."""
    try:
        for part in (path, *map(str, Path(path).parents)):
            status = os.stat(part)
            sticky = part != path and status.st_mode & stat.S_ISVTX
            if status.st_uid != 0 or (status.st_mode & 0o022 and not sticky):
                return False
    except OSError:
        return False
    return True
