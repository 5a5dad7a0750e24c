"""A bubblewrap sandbox inside its own cgroup: the process runtime's real isolation.

Launch: the launcher process (launcher.py) forks a child of ours that joins the sandbox's cgroups
(writing "0", itself, into each `join_files`), sets its rlimits, drops root to the unprivileged
sandbox uid with no group, and execs `bwrap`. So the program is inside the cgroup before it runs
a single instruction, and no host uid 0 ever runs inside the namespaces. The launch is asked for
by `spawn.py` (on the loop when it carries little in, else on a worker thread), in bwrap's own
dir, without `PWD`, and bwrap's options go in through a memory file: nothing inside shows a host
path. The work dir is a size-capped
tmpfs (see mounts.py) holding the input copy, the output dir, and the sandbox's /tmp and
/dev/shm; after the exit, output is copied out and everything released.

A sandbox with network is held before its program runs (launch.py): the platform opens the
egress proxy's socket inside its network namespace, then lets it go. Without writable cgroups
the launcher sets per-process rlimits instead, the pid namespace still ends the whole tree with
its first process, and `wait4` measures what the tree used.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path

import structlog

from saassy.kit.threads import SMALL_BYTES, on_loop_if
from saassy.runtime import bwrap, child_limits, mounts
from saassy.runtime.artifacts import take_output
from saassy.runtime.base import EgressGateway, EgressLink, SandboxSpec, Usage
from saassy.runtime.cgroups import CgroupLayout, SandboxCgroup
from saassy.runtime.environment import sandbox_env
from saassy.runtime.identity import Identity
from saassy.runtime.launch import LaunchFailed, LaunchFds
from saassy.runtime.launcher import ChildSetup
from saassy.runtime.netns import listen_in_netns
from saassy.runtime.proctree import first_child, tree_usage, user_threads
from saassy.runtime.seccomp import sandbox_filter
from saassy.runtime.spawn import Launch, SpawnedProcess, spawn_prepared
from saassy.runtime.supervise import SupervisedProcess
from saassy.runtime.syscalls import Arch
from saassy.runtime.workroot import work_dir_name

log = structlog.get_logger(__name__)

PEAK_SAMPLE_S = 0.05
PAGE = 4096
# Program files up to this size are copied into the sandbox's own tmpfs, so not even the mount
# table inside shows where they live on the host; larger ones are bound from there.
MAX_PROGRAM_COPY_BYTES = 1024 * 1024
SETTLE_S = 0.005
SETTLE_POLL_S = 0.001  # the loop's timer step
KILL_GRACE_S = 2.0
BACKSTOP_FACTOR = 2  # RLIMIT_NPROC behind a cgroup's pids.max
TREE_SAMPLE_S = 0.1
# Files and dirs a tmpfs may hold (its own, the program's few) for its output to be taken on the
# loop (`_holds_little`).
SMALL_FILES = 16
# What setlocale() reads: bwrap would load the locale's files (~0.2 ms of CPU) if its own
# environment carried them; it sets them for the program instead.
LOCALE_VARIABLE = re.compile(r"LANG|LC_[A-Z_]+")


@dataclass(frozen=True)
class SandboxHost:
    """What the host offers, found once by the runtime."""

    bwrap: str
    drops_root: bool  # we are root: the launch drops to the sandbox's uid before bwrap
    cgroups: CgroupLayout | None  # None: no writable cgroups, limits by rlimits instead
    work_root: Path
    can_mount: bool
    arch: Arch  # the seccomp filter's ABI
    disables_userns: bool = True  # bwrap's --disable-userns exists (0.8.0 on)
    egress: EgressGateway | None = None  # None: no sandbox gets network

    @property
    def bwrap_dir(self) -> str:
        """The launcher's cwd: bwrap runs as `./bwrap`, so its path shows nowhere inside."""
        return os.path.dirname(self.bwrap)


class NamespaceSandbox(SupervisedProcess):
    """One running `bwrap`, in one cgroup where the host allows."""

    def __init__(self, spec: SandboxSpec, host: SandboxHost, identity: Identity) -> None:
        super().__init__(spec)
        self.host = host
        self.identity = identity
        self.work_dir = host.work_root / work_dir_name(spec.name)
        self.cgroup: SandboxCgroup | None = None
        self._mounted = False
        # Program files: host path -> path inside, and what is mounted there (a copy or the file).
        self._programs = bwrap.program_binds(spec.argv, spec.read_only_paths)
        self._program_sources = {host: host for host in self._programs}  # until copied in
        self._work_dir_removed = False
        self._sampled_peak: int | None = None  # set when the kernel keeps no peak for us
        self._sampler: asyncio.Task[None] | None = None
        self._spawned: SpawnedProcess | None = None
        self._first_pid: int | None = None  # the sandbox's pid 1, as the host sees it (held)
        self._egress: EgressLink | None = None
        self._tree_cpu = 0.0
        self._tree_peak = 0

    async def launch(self) -> None:
        spec = self.spec
        identity = self.identity
        files = bwrap.etc_files(uid=identity.uid, gid=identity.gid)
        fds = LaunchFds.open(spec.secrets, held=spec.network, files=files)
        env = sandbox_env(
            spec,
            input_path=bwrap.INPUT_PATH,
            output_path=bwrap.OUTPUT_PATH,
            events_path=bwrap.EVENTS_PATH,
            secrets_path=bwrap.SECRETS_PATH,
        )
        locale = {name: env.pop(name) for name in list(env) if LOCALE_VARIABLE.fullmatch(name)}

        def prepared() -> Launch:
            command, setup = self._prepare(fds, locale)
            return Launch(command, fds.for_child, setup)

        try:
            self._spawned = await spawn_prepared(
                prepared, env=env, cwd=Path(self.host.bwrap_dir), on_loop=self._carries_little()
            )
            fds.close_child_ends()
            if fds.held:
                await self._prepare_held(fds)
        except BaseException as exc:
            fds.close_all()
            early = isinstance(exc, LaunchFailed) and self._spawned is not None
            said = await _said(self._spawned) if early and self._spawned else ""
            await self._release()
            if early:
                raise LaunchFailed(f"{exc}: {said}") from None
            raise
        self._supervise(self._spawned)
        if self._sampled_peak is not None:  # the kernel keeps no peak for us
            self._sampler = asyncio.create_task(self._sample_peak())
        elif self.cgroup is None:
            self._sampler = asyncio.create_task(self._sample_tree())

    async def _prepare_held(self, fds: LaunchFds) -> None:
        """bwrap made the namespaces and waits: open the proxy's socket inside, then let it go."""
        pid = self._first_pid = await fds.child_pid()
        assert self.host.egress is not None, "the runtime refuses network without a proxy"
        listener = listen_in_netns(pid)
        try:
            self._egress = await self.host.egress.attach(
                self.spec.name, self.spec.network_allow, listener, self._notice
            )
        except BaseException:
            listener.close()
            raise
        fds.release()

    def _processes(self, factor: int = 1) -> int:
        """The RLIMIT_NPROC that leaves this sandbox `pids` more processes than its uid runs
        now: a root platform's sandbox has a uid of its own, which runs nothing yet; a non-root
        platform's shares its uid, so the rest are counted."""
        running = user_threads(self.identity.uid) if child_limits.counts_uid_threads() else 0
        return running + self.spec.limits.pids * factor

    def _carries_little(self) -> bool:
        """Whether the launch copies little in (the input and the program files) onto a tmpfs:
        then it is prepared and spawned on the loop, without a hop (kit/threads.py). Not onto a
        disk work dir (a host that may not mount, as any non-root one): each file made there is a
        journaled write; nor when it counts its uid's threads: a scan of /proc, as long as the
        tenants' running sandboxes make it."""
        if not self.host.can_mount or child_limits.counts_uid_threads():
            return False
        carried = self.spec.input_file.stat().st_size + sum(self._program_copies().values())
        return carried <= SMALL_BYTES

    def _holds_little(self) -> bool:
        """Whether the sandbox's tmpfs holds little (one `statvfs`): few files of few bytes; then
        its output is copied out and the work dir removed on the loop. Not on a disk work dir:
        unknown, so no."""
        if not self._mounted:
            return False
        stats = os.statvfs(self.work_dir)
        # Files and dirs too: an empty one takes no block of a tmpfs, but each costs a copy or a
        # creation on the host (thousands of them: seconds of a loop every tenant shares).
        return (
            stats.f_files - stats.f_ffree <= SMALL_FILES
            and (stats.f_blocks - stats.f_bfree) * stats.f_frsize <= SMALL_BYTES
        )

    def _notice(self, text: str) -> None:
        self._pump.note("system", f"[saassy] {text}")

    def live_events_file(self) -> Path | None:
        return self.work_dir / "events.jsonl"

    def _prepare(self, fds: LaunchFds, locale: dict[str, str]) -> tuple[list[str], ChildSetup]:
        """Files, cgroup, and the launch command (blocking: on the loop only when small, see
        `_carries_little`); returns bwrap's command and what the launcher sets up before it."""
        spec, host = self.spec, self.host
        self._prepare_files()
        joins: tuple[str, ...] = ()
        if host.cgroups is not None:
            self.cgroup = host.cgroups.create(spec.name, spec.limits, spec.tenant)
            if self.cgroup.version == 2 and self.cgroup.peak_memory_bytes() is None:
                self._sampled_peak = 0  # v1 always keeps a peak
            joins = tuple(str(path) for path in self.cgroup.join_files)
            # A second fence, behind pids.max: the cgroup stays the one that stops a fork bomb.
            limits = child_limits.process_limit(self._processes(BACKSTOP_FACTOR))
        else:
            limits = child_limits.rlimits(spec.limits, self._processes())
        identity = self.identity
        setup = ChildSetup(
            joins=joins,
            rlimits=limits,
            uid=identity.uid if host.drops_root else None,
            gid=identity.gid if host.drops_root else None,
        )
        sources = self._program_sources
        options = bwrap.bwrap_options(
            self._files(),
            read_only_paths={sources[host]: inside for host, inside in self._programs.items()},
            file_fds=fds.files,
            secret_fds=fds.secrets,
            seccomp_fd=fds.add_memory(
                sandbox_filter(host.arch, allow_user_namespaces=spec.allow_user_namespaces)
            ),
            disable_userns=host.disables_userns and not spec.allow_user_namespaces,
            info_fd=fds.info_fd,
            block_fd=fds.block_fd,
            setenv=locale,
        )
        args_fd = fds.add_memory(bwrap.options_file(options))
        argv = bwrap.argv_inside(spec.argv, self._programs)
        command = [f"./{os.path.basename(host.bwrap)}", "--args", str(args_fd), "--", *argv]
        return command, setup

    def _files(self) -> bwrap.SandboxFiles:
        work = self.work_dir
        return bwrap.SandboxFiles(
            input_file=work / "input.json",
            output_dir=work / "output",
            events_file=work / "events.jsonl",
            tmp_bytes=self.spec.limits.disk_mb * 1024 * 1024,
            tmp_dir=work / "tmp" if self._mounted else None,
            shm_dir=work / "shm" if self._mounted else None,
        )

    def _prepare_files(self) -> None:
        """The private work dir: a size-capped tmpfs (when we may mount) that the sandbox uid may
        traverse, holding the input copy, the output dir, the events file, and the sandbox's
        /tmp and /dev/shm, so `disk_mb` caps all it writes together.

        Everything but the mount point lives in memory: on a disk file system each of these
        creations and removals is a journaled metadata write (~0.1-0.7 ms apiece).
        """
        host = self.host
        self.work_dir.mkdir(mode=0o711)
        if host.can_mount:
            copies = self._program_copies()
            carried = [self.spec.input_file.stat().st_size, *copies.values()]
            pages = sum(-(-size // PAGE) * PAGE for size in carried)  # not the task's disk_mb
            size = self.spec.limits.disk_mb * 1024 * 1024 + pages
            files = mounts.file_cap(self.spec.limits.disk_mb)
            mounts.mount_tmpfs(
                self.work_dir, size_bytes=size, uid=0, gid=0, mode=0o711, inodes=files
            )
            self._mounted = True
        else:
            self.work_dir.chmod(0o711)  # whatever the umask
        shutil.copyfile(self.spec.input_file, self.work_dir / "input.json")
        (self.work_dir / "input.json").chmod(0o444)
        if self._mounted:
            self._copy_programs(copies)
        (self.work_dir / "output").mkdir(mode=0o700)
        (self.work_dir / "events.jsonl").touch(mode=0o600)
        owned = [self.work_dir / "output", self.work_dir / "events.jsonl"]
        if self._mounted:
            for name in ("tmp", "shm"):
                (self.work_dir / name).mkdir(mode=0o700)
                owned.append(self.work_dir / name)
        if os.geteuid() == 0:
            for path in owned:
                os.chown(path, self.identity.uid, self.identity.gid)

    def _program_copies(self) -> dict[str, int]:
        """The program files small enough to copy in (read_only_paths stay bound): their sizes."""
        copies = {}
        for host, inside in self._programs.items():
            if host == inside:
                continue  # a dir or file the operator named: seen at its own path by design
            size = os.stat(host).st_size
            if size <= MAX_PROGRAM_COPY_BYTES:
                copies[host] = size
        return copies

    def _copy_programs(self, copies: dict[str, int]) -> None:
        for n, host in enumerate(copies):
            copy = self.work_dir / "programs" / str(n) / os.path.basename(host)
            copy.parent.mkdir(parents=True, mode=0o711)
            shutil.copyfile(host, copy)
            copy.chmod(0o555)
            self._program_sources[host] = str(copy)

    async def _sample_peak(self) -> None:
        """Only for v2 kernels without memory.peak: sample memory.current while running."""
        assert self.cgroup is not None
        while True:
            current = self.cgroup.current_memory_bytes()
            self._sampled_peak = max(self._sampled_peak or 0, current)
            await asyncio.sleep(PEAK_SAMPLE_S)

    async def _kill_tree(self) -> None:
        if self.cgroup is not None:
            await self.cgroup.kill_all()
            return
        # No cgroup: the pid namespace ends with its first process; bwrap, its parent, then
        # exits by itself, and is killed only if it lingers.
        if self._spawned is None:
            return
        self._rusage()  # the last look at what the tree used
        first = self._first_pid or first_child(self._spawned.pid)
        for pid in (first, self._spawned.pid):
            if pid is None:
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(KILL_GRACE_S):
                    await self._spawned.wait()
                return

    async def _measure_now(self) -> Usage:
        return await asyncio.to_thread(self._measure)

    def _measure(self) -> Usage:
        if self.cgroup is None:
            return self._rusage()
        peak = self.cgroup.peak_memory_bytes()
        if peak is None:
            peak = max(self._sampled_peak or 0, self.cgroup.current_memory_bytes())
        return Usage(self.cgroup.cpu_seconds(), peak, self.wall_seconds)

    def _rusage(self) -> Usage:
        """Without a cgroup: what the tree was last seen to use (`_sample_tree`): CPU, and the
        most memory it held at once (`ru_maxrss` would be the server's: the child is vforked)."""
        if self._spawned is not None and self._exit is None:
            self._sample_now()
        return Usage(self._tree_cpu, self._tree_peak, self.wall_seconds)

    def _sample_now(self) -> None:
        assert self._spawned is not None
        cpu, resident = tree_usage(self._spawned.pid)
        self._tree_cpu = max(self._tree_cpu, cpu)
        self._tree_peak = max(self._tree_peak, resident)

    async def _sample_tree(self) -> None:
        """Without a cgroup nobody totals the tree for us: bwrap exits before it reaps the
        sandbox's first process. Sum what /proc shows, until the end."""
        while True:
            await asyncio.sleep(TREE_SAMPLE_S)
            self._sample_now()

    async def _finish(self) -> bool:
        if self._sampler is not None:
            self._sampler.cancel()
        collected = None
        if self.cgroup is not None:
            if not await self._empties_soon():
                collected = None  # something outlived the program: the tree is killed below
            elif self._holds_little():  # the common case, looked at once nothing can write
                collected = self._collect()
            else:
                collected = await asyncio.to_thread(self._collect)
        if collected is None:  # something outlived the main process (or there is no cgroup)
            await self._kill_tree()
            collected = await asyncio.to_thread(self._collect)
        usage, oom = collected
        if self._egress is not None:
            usage = replace(usage, egress=await self._egress.close())
        self._usage = usage
        return oom

    async def _empties_soon(self) -> bool:
        """Whether the cgroup is empty, or empties within `SETTLE_S`. Right after an exit bwrap's
        init is often still listed (bwrap reports the exit first, its namespaces take a moment
        to go): looked at again at the loop's timer steps (~1 ms), one read each."""
        assert self.cgroup is not None
        end = time.monotonic() + SETTLE_S
        while self.cgroup.pids():
            if time.monotonic() >= end:
                return False
            await asyncio.sleep(SETTLE_POLL_S)
        return True

    def _collect(self) -> tuple[Usage, bool]:
        """Off the loop, after exit (the tree is gone), in one thread hop: usage, whether memory
        ran out, the output copied out, and the work dir removed. The cgroup stays, readable,
        until `cleanup()`.
        """
        usage = self._measure()
        oom = self.cgroup.oom_killed() if self.cgroup is not None else False
        try:
            take_output(
                self.work_dir,
                self.spec.output_dir,
                self.spec.events_file,
                self.spec.limits.disk_mb,
            )
        finally:
            self._remove_work_dir()
        return usage, oom

    async def _release(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self._egress is not None:
            with contextlib.suppress(Exception):
                await self._egress.close()
        if self._exit is None:  # after an exit the tree is gone
            if self.cgroup is not None:
                await self.cgroup.kill_all()
            elif self._spawned is not None:
                await self._kill_tree()
                with contextlib.suppress(Exception):
                    await self._spawned.wait()
        # Once the work dir is gone (after an exit) only the cgroup's directories are left.
        await on_loop_if(self._work_dir_removed, self._remove)

    def _remove(self) -> None:
        """The (empty) cgroup, then the work dir if still there; blocking."""
        if self.cgroup is not None:
            try:
                self.cgroup.remove()
            except OSError:  # still busy: `sweep()` frees it later
                log.warning("sandbox.cgroup_not_removed", sandbox=self.spec.name, exc_info=True)
        self._remove_work_dir()

    def _remove_work_dir(self) -> None:
        """Unmount and remove the work dir; idempotent."""
        if self._work_dir_removed:
            return
        if self._mounted:
            try:
                mounts.unmount(self.work_dir)
                self._mounted = False
            except OSError:
                log.warning("sandbox.work_dir_not_unmounted", sandbox=self.spec.name, exc_info=True)
        try:
            self.work_dir.rmdir()  # unmounted, it is the empty mount point
        except OSError:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        self._work_dir_removed = True


async def _said(process: SpawnedProcess) -> str:
    """What a launch that failed early wrote on stderr (bwrap's own complaint), in one line."""
    said = b""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            await process.wait()
            said = await process.stderr.read(4096)
    return said.decode(errors="replace").strip().replace("\n", "; ") or "no message"
