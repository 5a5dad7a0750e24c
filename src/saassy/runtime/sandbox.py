"""A bubblewrap sandbox inside its own cgroup: the process runtime's real isolation.

Launch order: `/bin/sh` (as the platform, root) writes its own pid into the sandbox's cgroup.procs
files, then execs `setpriv` to become the unprivileged sandbox uid, which execs `bwrap`. So the
program is inside the cgroup before it runs a single instruction, and no host uid 0 ever runs
inside the namespaces. The output dir is a size-capped tmpfs (see mounts.py), copied out after.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

import structlog

from saassy.runtime import bwrap, mounts
from saassy.runtime.artifacts import copy_file, copy_out
from saassy.runtime.base import SandboxSpec, Usage
from saassy.runtime.cgroups import CgroupLayout, SandboxCgroup, cgroup_name
from saassy.runtime.environment import sandbox_env
from saassy.runtime.supervise import SupervisedProcess

log = structlog.get_logger(__name__)

# Join every cgroup given before "--", then exec the rest; exit 125 when a join fails.
TRAMPOLINE = (
    'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; '
    'ulimit -c 0; exec "$@"'
)
PEAK_SAMPLE_S = 0.05


@dataclass(frozen=True)
class SandboxHost:
    """What the host offers, found once by the runtime."""

    bwrap: str
    setpriv: str | None  # set when we are root and must drop to `uid` before bwrap
    cgroups: CgroupLayout
    work_root: Path
    can_mount: bool
    uid: int
    gid: int


def work_dir_name(name: str) -> str:
    """`<cgroup name>@<owner pid>-<random>`: `@` never occurs in a cgroup name."""
    return f"{cgroup_name(name)}@{os.getpid()}-{secrets.token_hex(4)}"


class NamespaceSandbox(SupervisedProcess):
    """One running `bwrap` in one cgroup."""

    def __init__(self, spec: SandboxSpec, host: SandboxHost) -> None:
        super().__init__(spec)
        self.host = host
        self.work_dir = host.work_root / work_dir_name(spec.name)
        self.stage = self.work_dir / "fs"
        self.cgroup: SandboxCgroup | None = None
        self._mounted = False
        self._sampled_peak = 0
        self._sampler: asyncio.Task[None] | None = None

    async def launch(self) -> None:
        spec, host = self.spec, self.host
        try:
            self._prepare_files()
            self.cgroup = host.cgroups.create(spec.name, spec.limits)
            drop = []
            if host.setpriv is not None:
                drop = [host.setpriv, "--reuid", str(host.uid), "--regid", str(host.gid)]
                drop += ["--clear-groups", "--no-new-privs", "--bounding-set", "-all"]
            command = bwrap.bwrap_argv(
                host.bwrap,
                spec.argv,
                etc=bwrap.write_etc(self.work_dir, uid=host.uid, gid=host.gid),
                input_file=self.work_dir / "input.json",
                output_dir=self.stage / "output",
                events_file=self.stage / "events.jsonl",
                tmp_bytes=spec.limits.disk_mb * 1024 * 1024,
                network=spec.network,
                read_only_paths=bwrap.program_paths(spec.argv, spec.read_only_paths),
            )
            joins = [str(path) for path in self.cgroup.join_files]
            env = sandbox_env(
                spec,
                input_path=bwrap.INPUT_PATH,
                output_path=bwrap.OUTPUT_PATH,
                events_path=bwrap.EVENTS_PATH,
            )
            process = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", TRAMPOLINE, "saassy-launch", *joins, "--", *drop, *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=self.work_dir,
                start_new_session=True,
            )  # fmt: skip
        except BaseException:
            await self._release()
            raise
        self._supervise(process)
        if self.cgroup.peak_memory_bytes() is None:
            self._sampler = asyncio.create_task(self._sample_peak())

    def _prepare_files(self) -> None:
        """Private work dir the sandbox uid may traverse, with its input copy and output stage."""
        host = self.host
        self.work_dir.mkdir(mode=0o711)
        self.work_dir.chmod(0o711)
        shutil.copyfile(self.spec.input_file, self.work_dir / "input.json")
        (self.work_dir / "input.json").chmod(0o444)
        self.stage.mkdir(mode=0o700)
        if host.can_mount:
            size = self.spec.limits.disk_mb * 1024 * 1024
            mounts.mount_tmpfs(self.stage, size_bytes=size, uid=host.uid, gid=host.gid)
            self._mounted = True
        (self.stage / "output").mkdir()
        (self.stage / "events.jsonl").touch()
        if os.geteuid() == 0:
            for path in (self.stage, self.stage / "output", self.stage / "events.jsonl"):
                os.chown(path, host.uid, host.gid)

    async def _sample_peak(self) -> None:
        """Only for v2 kernels without memory.peak: sample memory.current while running."""
        assert self.cgroup is not None
        while True:
            self._sampled_peak = max(self._sampled_peak, self.cgroup.current_memory_bytes())
            await asyncio.sleep(PEAK_SAMPLE_S)

    async def _kill_tree(self) -> None:
        if self.cgroup is not None:
            await self.cgroup.kill_all()

    async def _measure_now(self) -> Usage:
        if self.cgroup is None:
            return Usage(0.0, 0, 0.0)
        peak = self.cgroup.peak_memory_bytes()
        if peak is None:
            peak = max(self._sampled_peak, self.cgroup.current_memory_bytes())
        return Usage(self.cgroup.cpu_seconds(), peak, self.wall_seconds)

    async def _finish(self) -> bool:
        assert self.cgroup is not None
        if self._sampler is not None:
            self._sampler.cancel()
        self._usage = await self._measure_now()
        oom = self.cgroup.oom_killed()
        try:
            await asyncio.to_thread(self._copy_out)
        except OSError:  # the exit and usage still count; the output is what is lost
            log.exception("sandbox.output_not_copied", sandbox=self.spec.name)
        finally:
            self._unmount()
        return oom

    def _copy_out(self) -> None:
        copy_out(self.stage / "output", self.spec.output_dir)
        if self.spec.events_file is not None:
            copy_file(self.stage / "events.jsonl", self.spec.events_file)
        self._unmount()

    def _unmount(self) -> None:
        if self._mounted:
            mounts.unmount(self.stage)
            self._mounted = False

    async def _release(self) -> None:
        if self._sampler is not None:
            self._sampler.cancel()
        if self.cgroup is not None:
            await self.cgroup.kill_all()
            try:
                self.cgroup.remove()
            except OSError:  # still busy: `sweep()` frees it later
                log.warning("sandbox.cgroup_not_removed", sandbox=self.spec.name, exc_info=True)
        try:
            self._unmount()
        except OSError:
            log.warning("sandbox.stage_not_unmounted", sandbox=self.spec.name, exc_info=True)
        await asyncio.to_thread(shutil.rmtree, self.work_dir, True)
