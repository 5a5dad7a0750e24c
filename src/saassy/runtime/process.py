"""The process runtime: bubblewrap inside a cgroup when the host allows, else rlimits (loudly).

`ProcessRuntime.create()` (or `detect_runtime()`) probes the host once: bwrap on PATH, writable
cgroups (v2 with memory/cpu/pids controllers, else v1), setpriv to drop root, and whether a tmpfs
can be mounted to cap the output dir. `describe()` reports the isolation actually in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Collection
from pathlib import Path

import structlog

from saassy.runtime import mounts
from saassy.runtime.base import IsolationLevel, Runtime, SandboxHandle, SandboxSpec, Usage
from saassy.runtime.cgroups import SandboxCgroup, cgroup_name, detect_cgroups
from saassy.runtime.rlimits import RlimitsSandbox
from saassy.runtime.sandbox import SHARED_ETC, NamespaceSandbox, SandboxHost

log = structlog.get_logger(__name__)

SANDBOX_UID = 65534  # nobody
SANDBOX_GID = 65534


def _work_root(path: Path | None) -> Path:
    """A private dir for per-sandbox files; 0711 so the sandbox uid can reach its own files."""
    root = path or Path(tempfile.gettempdir()) / f"saassy-sandboxes-{os.geteuid()}"
    root.mkdir(mode=0o711, parents=True, exist_ok=True)
    info = root.lstat()
    if info.st_uid != os.geteuid() or root.is_symlink():
        raise RuntimeError(f"{root} is not owned by this user; refusing to use it")
    root.chmod(0o711)
    return root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _bwrap_failure(command: list[str]) -> str | None:
    """Run `true` in a minimal sandbox once: user namespaces may be disabled (sysctl, AppArmor)."""
    probe = ["--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv of binaries found on PATH
            [*command, *probe], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
    return None


async def _end(cgroup: SandboxCgroup) -> Usage | None:
    """Kill the cgroup's tree and read what it used; wall time is the caller's to bound."""
    try:
        await cgroup.kill_all()
        peak = cgroup.peak_memory_bytes() or cgroup.current_memory_bytes()
        return Usage(cgroup.cpu_seconds(), peak, 0.0)
    except OSError:  # removed meanwhile (its own supervisor, if alive, cleaned up)
        return None


def _remove_work_dir(leftover: Path) -> None:
    for mounted in (leftover / "fs", leftover):  # "fs": the stage of older versions
        with contextlib.suppress(OSError):
            mounts.unmount(mounted)
    shutil.rmtree(leftover, ignore_errors=True)


class ProcessRuntime(Runtime):
    """Sandboxes as local processes: namespaces + cgroups, or the rlimits fallback."""

    name = "process"

    def __init__(
        self,
        *,
        force_rlimits: bool = False,
        work_dir: Path | None = None,
        cgroup_parent: str = "saassy",
        uid: int = SANDBOX_UID,
        gid: int = SANDBOX_GID,
    ) -> None:
        self.work_root = _work_root(work_dir)
        self.host: SandboxHost | None = None
        self.missing: list[str] = []
        if not force_rlimits:
            self.host = self._probe(cgroup_parent, uid, gid)
        else:
            self.missing.append("forced by configuration")
        if self.host is not None:
            self.isolation = IsolationLevel.namespaces_cgroups
            self.isolates_network = True
            self.enforces_memory = self.enforces_cpu = self.enforces_pids = True
            self.measures_cgroup_usage = True
            self.enforces_disk = self.host.can_mount
            log.info("runtime.ready", **self.describe())
        else:
            self.isolation = IsolationLevel.rlimits
            self.enforces_memory = True  # per process (RLIMIT_AS), not per tree
            log.warning(
                "runtime.NOT_ISOLATED: sandboxes run as plain processes with rlimits only; "
                "install bubblewrap and run with writable cgroups for real isolation",
                **self.describe(),
            )

    @classmethod
    def create(cls, **options: object) -> ProcessRuntime:
        """The best process runtime this host supports."""
        return cls(**options)  # type: ignore[arg-type]

    def _probe(self, cgroup_parent: str, uid: int, gid: int) -> SandboxHost | None:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            self.missing.append("bubblewrap (bwrap) not on PATH")
        cgroups = detect_cgroups(cgroup_parent)
        if cgroups is None:
            self.missing.append("no writable cgroup with memory, cpu and pids controllers")
        root = os.geteuid() == 0
        setpriv = shutil.which("setpriv") if root else None
        if root and setpriv is None:
            self.missing.append("setpriv (util-linux) not on PATH, needed to drop root")
        blocked = [p for p in self.work_root.parents if not p.stat().st_mode & 0o001]
        if blocked:  # bwrap runs as the sandbox uid and must reach the files it binds
            self.missing.append(f"work dir unreachable for the sandbox uid: {blocked[0]} is 0700")
        if bwrap is None or cgroups is None or (root and setpriv is None) or blocked:
            return None
        drop = (
            [setpriv, "--reuid", str(uid), "--regid", str(gid), "--clear-groups"] if setpriv else []
        )
        failure = _bwrap_failure([*drop, bwrap])
        if failure is not None:
            self.missing.append(f"bwrap cannot create namespaces here: {failure}")
            return None
        return SandboxHost(
            bwrap=bwrap,
            setpriv=setpriv,
            cgroups=cgroups,
            work_root=self.work_root,
            can_mount=mounts.can_mount_tmpfs(self.work_root),
            uid=uid if root else os.geteuid(),
            gid=gid if root else os.getegid(),
        )

    async def start(self, spec: SandboxSpec) -> SandboxHandle:
        if self.host is not None:
            sandbox = NamespaceSandbox(spec, self.host)
            await sandbox.launch()
            return sandbox
        fallback = RlimitsSandbox(spec, self.work_root)
        await fallback.launch()
        return fallback

    async def end_leftover(self, name: str) -> Usage | None:
        """Kill what a crashed platform process left of sandbox `name` and measure it; the
        cgroup stays (its counters frozen) until `recover` or `sweep` removes it."""
        cgroup = self._leftover_cgroup(name)
        return None if cgroup is None else await _end(cgroup)

    async def recover(self, name: str) -> Usage | None:
        """Kill and measure a sandbox a crashed platform process left behind, then free it."""
        usage = None
        cgroup = self._leftover_cgroup(name)
        if cgroup is not None:
            usage = await _end(cgroup)
            cgroup.remove()
        for leftover in self.work_root.glob(f"{cgroup_name(name)}@*"):
            await self._remove_work_dir(leftover)
        return usage

    async def sweep(self, keep: Collection[str] = ()) -> int:
        """Free every sandbox whose platform process is gone, but only end (kill) those named
        in `keep`: adoption measures and frees them once their attempts' leases run out."""
        kept = {cgroup_name(name) for name in keep}
        freed = 0
        for leftover in self.work_root.glob("*@*"):
            name, _, owner = leftover.name.rpartition("@")
            pid = int(owner.split("-")[0]) if owner.split("-")[0].isdigit() else 0
            if pid > 0 and _alive(pid):
                continue
            # A dead process's /etc files have no cgroup.
            cgroup = self._leftover_cgroup(name) if name != SHARED_ETC else None
            if cgroup is not None:
                with contextlib.suppress(OSError):
                    await cgroup.kill_all()
                    if name not in kept:
                        cgroup.remove()
            if name in kept:
                continue
            await self._remove_work_dir(leftover)
            freed += 1
        return freed

    def _leftover_cgroup(self, name: str) -> SandboxCgroup | None:
        return self.host.cgroups.existing(name) if self.host is not None else None

    async def _remove_work_dir(self, leftover: Path) -> None:
        await asyncio.to_thread(_remove_work_dir, leftover)

    def describe(self) -> dict[str, object]:
        described = super().describe()
        if self.host is not None:
            described["cgroup_version"] = self.host.cgroups.version
        else:
            described["missing"] = list(self.missing)
        return described


def detect_runtime(**options: object) -> Runtime:
    """The strongest runtime available here (for now: the process runtime, best mode)."""
    return ProcessRuntime.create(**options)
