"""One docker container as a sandbox handle: launch, stream, measure, copy out, remove.

The container is created, attached to (stdout and stderr, demultiplexed by the SDK) and only
then started, so no output is missed and dockerd keeps none of it (log driver `none`: a task
that prints gigabytes fills no log file). The supervision shared with the process runtime
(`SupervisedProcess`: timeout, kill, caps, redaction) runs on top. Usage is read from a cgroup
of the sandbox's own that the container's cgroup lives under: dockerd removes the container's
cgroup as it exits, its parent keeps the totals until `cleanup()`.

A task type with network or with secrets as environment variables runs behind the gate
(gate.py): the program starts only once the platform has opened the egress proxy's socket in
the container's network namespace and handed the secrets over through a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeAlias

import structlog
from docker import DockerClient
from docker.errors import APIError, NotFound
from docker.models.containers import Container
from docker.types import CancellableStream, LogConfig, Mount

from saassy.kit.threads import to_thread_to_the_end
from saassy.runtime import mounts
from saassy.runtime.artifacts import take_output
from saassy.runtime.base import EgressGateway, EgressLink, SandboxSpec, Usage
from saassy.runtime.bwrap import (
    EVENTS_PATH,
    INPUT_PATH,
    OUTPUT_PATH,
    SANDBOX_SHM,
    SANDBOX_TMP,
    SECRETS_PATH,
)
from saassy.runtime.cgroups import CgroupLayout, SandboxCgroup
from saassy.runtime.container_leftovers import hold_tenant_dirs, remove_cgroups, remove_staging
from saassy.runtime.container_seccomp import container_profile
from saassy.runtime.environment import sandbox_env, secret_variables
from saassy.runtime.gate import GATE_PATH, Gate, gate_argv
from saassy.runtime.identity import Identity
from saassy.runtime.netns import listen_in_netns
from saassy.runtime.supervise import SupervisedProcess
from saassy.runtime.syscalls import native_arch
from saassy.runtime.workroot import work_dir_name

log = structlog.get_logger(__name__)

LABEL_SANDBOX = "saassy.sandbox"
LABEL_INSTANCE = "saassy.instance"
LABEL_DEADLINE = "saassy.deadline"  # epoch seconds: past it any sweep kills the container
# Beyond the task's timeout, for its supervisor to kill and measure it first.
DEADLINE_GRACE_S = 60
LABEL_OWNER = "saassy.owner"  # the platform process's pid: a sweep frees a dead owner's
STABLE_READS = 20
STABLE_POLL_S = 0.002
PAGE = 4096
# An attach stream, demultiplexed (generic in the stubs only).
Frames: TypeAlias = "CancellableStream[tuple[bytes | None, bytes | None]]"


@dataclass(frozen=True)
class DockerHost:
    """What the runtime found once: the clients, where cgroups go, whether it may mount."""

    client: DockerClient  # attach and wait lift its timeout themselves
    cgroups: CgroupLayout
    cgroup_parent: str  # the layout's parent, relative to the cgroup root, for dockerd
    instance: str
    work_root: Path
    can_mount: bool
    egress: EgressGateway | None = None  # None: no container gets network


class ContainerProcess:
    """A started container as `SupervisedProcess` sees a process: two readers and an exit."""

    def __init__(self, host: DockerHost, container_id: str) -> None:
        self.pid = 0
        self.stdout: asyncio.StreamReader = asyncio.StreamReader()
        self.stderr: asyncio.StreamReader = asyncio.StreamReader()
        self._host = host
        self._id = container_id
        self._exit: asyncio.Future[int] | None = None

    def follow(self, frames: Iterator[tuple[bytes | None, bytes | None]]) -> None:
        """Feed the readers from the attach stream on a thread of its own, until it ends."""
        loop = asyncio.get_running_loop()

        def feed(reader: asyncio.StreamReader, data: bytes) -> None:
            reader.feed_data(data)

        def pump() -> None:
            try:
                for out, err in frames:
                    if out:
                        loop.call_soon_threadsafe(feed, self.stdout, out)
                    if err:
                        loop.call_soon_threadsafe(feed, self.stderr, err)
            except Exception:  # the connection ended with the container (or dockerd)
                log.debug("container.attach_ended", container=self._id, exc_info=True)
            finally:
                _close_stream(frames)
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(self.stdout.feed_eof)
                    loop.call_soon_threadsafe(self.stderr.feed_eof)

        threading.Thread(target=pump, name=f"attach {self._id[:12]}", daemon=True).start()

    def started(self) -> None:
        """Watch for the exit; only once started (a created container counts as exited)."""
        self._exit = asyncio.ensure_future(asyncio.to_thread(self._wait))

    def _wait(self) -> int:
        try:
            status = self._host.client.api.wait(self._id)
        except NotFound:  # removed under us: it is not running any more
            return 137
        return int(status.get("StatusCode", 137))

    async def wait(self) -> int:
        assert self._exit is not None, "the container was never followed"
        return await asyncio.shield(self._exit)


def _close_stream(frames: object) -> None:
    """The SDK's attach stream shuts its socket down on `close()`, but the HTTP response still
    holds a file over it: closed too, or the descriptor stays open until garbage collection."""
    for closeable in (frames, getattr(frames, "_response", None)):
        close = getattr(closeable, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


class ContainerSandbox(SupervisedProcess):
    """One container of the task type's image, closed by default, in a cgroup of its own.

    `gated`: the program (the image's ENTRYPOINT and CMD, or the spec's argv after the image's
    ENTRYPOINT) runs behind the gate, which the platform opens once the container is ready.
    """

    def __init__(
        self,
        spec: SandboxSpec,
        host: DockerHost,
        identity: Identity,
        *,
        gated: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(spec)
        self.host = host
        self.identity = identity
        self.work_dir = host.work_root / work_dir_name(spec.name)
        self.cgroup: SandboxCgroup | None = None
        self.container_id: str | None = None
        self._gated = gated
        self._gate = Gate(self.work_dir / "gate") if gated is not None else None
        self._egress: EgressLink | None = None
        self._attached: Frames | None = None
        self._mounted = False
        self._work_dir_removed = False

    async def launch(self) -> None:
        # Each step on a worker thread that a cancellation (or two) waits for: what it made (a
        # container, an attach stream) is recorded before the clean-up below looks for it.
        try:
            await to_thread_to_the_end(self._prepare)
            process = ContainerProcess(self.host, await to_thread_to_the_end(self._create))
            process.follow(await to_thread_to_the_end(self._attach))
            await to_thread_to_the_end(self._start)
            process.started()
            await self._open_gate()
        except BaseException:
            await self._release()
            self._end_attach()
            raise
        self._supervise(process)

    async def _open_gate(self) -> None:
        """The container runs, held by its gate: open the proxy's socket inside, then let go."""
        if self._gate is None:
            return
        if self.spec.network:
            assert self.host.egress is not None, "the runtime refuses network without a proxy"
            pid = await asyncio.to_thread(self._pid)
            listener = listen_in_netns(pid)
            try:
                self._still_ours(pid)
                self._egress = await self.host.egress.attach(
                    self.spec.name, self.spec.network_allow, listener, self._notice
                )
            except BaseException:
                listener.close()
                raise
        await self._gate.open(secret_variables(self.spec))

    def _pid(self) -> int:
        """The container's first process (docker's init) as the host sees it."""
        pid = int(self.host.client.api.inspect_container(self._id)["State"].get("Pid") or 0)
        if pid <= 0:  # it ended already: the gate's shell did not start
            raise RuntimeError(f"container of sandbox {self.spec.name} is not running")
        return pid

    def _still_ours(self, pid: int) -> None:
        """`pid` is still in this container (its cgroup names it): had it ended and its number
        gone to another process before `setns`, the socket would be in that one's network."""
        try:
            with open(f"/proc/{pid}/cgroup") as cgroups:
                ours = self._id in cgroups.read()
        except OSError:
            ours = False
        if not ours:
            raise RuntimeError(f"container of sandbox {self.spec.name} ended while starting")

    def _notice(self, text: str) -> None:
        self._pump.note("system", f"[saassy] {text}")

    def _prepare(self) -> None:
        """The staging dir (a tmpfs of `disk_mb` when we may mount) and the sandbox's cgroup."""
        spec = self.spec
        self.work_dir.mkdir(mode=0o711)
        if self.host.can_mount:
            mounts.mount_tmpfs(
                self.work_dir,
                size_bytes=spec.limits.disk_mb * 1024 * 1024 + _carried_bytes(spec),
                uid=0,
                gid=0,
                mode=0o711,
                inodes=mounts.file_cap(spec.limits.disk_mb),
            )
            self._mounted = True
        shutil.copyfile(spec.input_file, self.work_dir / "input.json")
        (self.work_dir / "input.json").chmod(0o444)
        (self.work_dir / "output").mkdir(mode=0o700)
        (self.work_dir / "events.jsonl").touch(mode=0o600)
        owned = [self.work_dir / "output", self.work_dir / "events.jsonl", *self._scratch_dirs()]
        if spec.secrets:
            secrets = self.work_dir / "secrets"
            secrets.mkdir(mode=0o500)
            for name, value in spec.secrets.items():
                path = secrets / name
                path.write_text(value.get_secret_value())
                path.chmod(0o400)
                owned.append(path)
            owned.append(secrets)
        if os.geteuid() == 0:
            for path in owned:
                os.chown(path, self.identity.uid, self.identity.gid)
        if self._gate is not None:
            self._gate.make(self.identity if os.geteuid() == 0 else None)
        self.cgroup = self.host.cgroups.create(spec.name, spec.limits, spec.tenant)
        hold_tenant_dirs(self.host.cgroup_parent, self.cgroup)

    def _create(self) -> str:
        spec, host = self.spec, self.host
        limits = spec.limits
        binds = [
            Mount(INPUT_PATH, str(self.work_dir / "input.json"), type="bind", read_only=True),
            Mount(OUTPUT_PATH, str(self.work_dir / "output"), type="bind"),
            Mount(EVENTS_PATH, str(self.work_dir / "events.jsonl"), type="bind"),
            *self._scratch_mounts(),
        ]
        if spec.secrets:
            binds.append(
                Mount(SECRETS_PATH, str(self.work_dir / "secrets"), type="bind", read_only=True)
            )
        if self._gate is not None:
            binds.append(Mount(GATE_PATH, str(self._gate.path), type="bind", read_only=True))
        # dockerd keeps a container's environment on the host's disk: secrets asked for as
        # variables go through the gate's pipe instead.
        env = sandbox_env(
            spec,
            input_path=INPUT_PATH,
            output_path=OUTPUT_PATH,
            events_path=EVENTS_PATH,
            secrets_path=SECRETS_PATH,
            with_secrets=False,
        )
        if "PATH" not in spec.env:
            del env["PATH"]  # the image's own PATH: it knows where its programs are
        memory = f"{limits.memory_mb}m"
        assert spec.image is not None, "the runtime refuses a spec without an image"
        gated = self._gated
        container: Container = host.client.containers.create(
            spec.image,
            (list(spec.argv) or None) if gated is None else None,
            # An entrypoint given here drops the image's CMD too: `gated` holds both.
            entrypoint=gate_argv(gated) if gated is not None else None,
            name=None,
            hostname="sandbox",
            user=f"{self.identity.uid}:{self.identity.gid}",
            environment=env,
            working_dir=SANDBOX_TMP,
            network_mode="none",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges", *seccomp_options(spec)],
            mem_limit=memory,
            memswap_limit=memory,
            nano_cpus=int(limits.cpus * 1e9),
            pids_limit=limits.pids,
            shm_size=None if self._mounted else f"{limits.disk_mb}m",
            mounts=binds,
            init=True,
            cgroup_parent=f"{host.cgroup_parent}/{self.cgroup_dir}",
            log_config=LogConfig(type="none"),
            labels={
                LABEL_SANDBOX: spec.name,
                LABEL_INSTANCE: host.instance,
                LABEL_OWNER: str(os.getpid()),
                # A supervisor that dies leaves its container running: whoever sweeps next
                # kills it once this passes, whichever process started it.
                LABEL_DEADLINE: str(int(time.time() + limits.timeout_s + DEADLINE_GRACE_S)),
            },
        )
        self.container_id = container.id
        assert self.container_id is not None
        return self.container_id

    def _scratch_dirs(self) -> list[Path]:
        """The sandbox's temporary dirs in the staging tmpfs, when there is one: `disk_mb` (and
        its file cap) then holds all the container writes together, as in the process runtime."""
        if not self._mounted:
            return []
        made = [self.work_dir / "tmp", self.work_dir / "shm"]
        for directory in made:
            directory.mkdir(mode=0o700)
        return made

    def _scratch_mounts(self) -> list[Mount]:
        if self._mounted:
            return [
                Mount(SANDBOX_TMP, str(self.work_dir / "tmp"), type="bind"),
                Mount(SANDBOX_SHM, str(self.work_dir / "shm"), type="bind"),
            ]
        size = self.spec.limits.disk_mb * 1024 * 1024  # each its own: not capped together
        return [Mount(SANDBOX_TMP, None, type="tmpfs", tmpfs_size=size, tmpfs_mode=0o1777)]

    @property
    def cgroup_dir(self) -> str:
        assert self.cgroup is not None
        return self.cgroup.relative_path

    @property
    def _id(self) -> str:
        assert self.container_id is not None, "the container was never created"
        return self.container_id

    def _attach(self) -> Frames:
        attached: Frames = self.host.client.api.attach(
            self._id, stdout=True, stderr=True, stream=True, logs=False, demux=True
        )
        self._attached = attached
        return attached

    def _end_attach(self) -> None:
        """End the attach stream of a launch that failed: dockerd keeps a never-started
        container's stream open after its removal, and with it the socket and the pump thread.
        Shut down only: the pump closes the socket as it ends, so the descriptor it polls cannot
        be closed and reused (by another request's connection) under it."""
        if self._attached is not None:
            with contextlib.suppress(Exception):
                self._attached.close()  # the SDK's stream: shuts its socket down

    def _start(self) -> None:
        self.host.client.api.start(self._id)

    async def _kill_tree(self) -> None:
        if self.container_id is None:
            return
        with contextlib.suppress(NotFound, APIError):  # already ended: nothing to kill
            await asyncio.to_thread(self.host.client.api.kill, self.container_id)
        if self._process is not None:
            await self._process.wait()

    async def _measure_now(self) -> Usage:
        return await asyncio.to_thread(self._measure)

    def _measure(self) -> Usage:
        if self.cgroup is None:
            return Usage(0.0, 0, self.wall_seconds)
        peak = self.cgroup.peak_memory_bytes()
        if peak is None:
            peak = self.cgroup.current_memory_bytes()
        return Usage(self.cgroup.cpu_seconds(), peak, self.wall_seconds)

    async def _finish(self) -> bool:
        oom = await asyncio.to_thread(self._collect)
        if self._egress is not None:
            link, self._egress = self._egress, None
            assert self._usage is not None
            self._usage = replace(self._usage, egress=await link.close())
        return oom

    def _collect(self) -> bool:
        """After exit, in one thread hop: whether memory ran out, usage, the output copied."""
        oom = False
        with contextlib.suppress(NotFound, APIError):
            state = self.host.client.api.inspect_container(self._id)["State"]
            oom = bool(state.get("OOMKilled"))
        self._usage = self._settled_usage()
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                oom = oom or self.cgroup.oom_killed()
        try:
            take_output(
                self.work_dir, self.spec.output_dir, self.spec.events_file, self.spec.limits.disk_mb
            )
        finally:
            self._remove_work_dir()
        return oom

    def _settled_usage(self) -> Usage:
        """The killed tasks' last CPU ticks land as they are reaped: read until it holds."""
        usage = self._measure()
        for _ in range(STABLE_READS):
            again = self._measure()
            if again.cpu_seconds == usage.cpu_seconds:
                break
            usage = again
            time.sleep(STABLE_POLL_S)
        return usage

    async def _release(self) -> None:
        if self._egress is not None:
            link, self._egress = self._egress, None
            with contextlib.suppress(Exception):
                await link.close()
        await asyncio.to_thread(self._remove)

    def _remove(self) -> None:
        """The container, then its cgroups, then the staging dir; blocking, idempotent."""
        if self.container_id is not None:
            with contextlib.suppress(NotFound):
                self.host.client.api.remove_container(self.container_id, force=True)
        if self.cgroup is not None:
            remove_cgroups(self.host.cgroup_parent, self.cgroup)
        if self._gate is not None:
            self._gate.close()
        self._remove_work_dir()

    def _remove_work_dir(self) -> None:
        if self._work_dir_removed:
            return
        remove_staging(self.work_dir)
        self._work_dir_removed = True


def _carried_bytes(spec: SandboxSpec) -> int:
    """The pages the input copy and the secret files take in the staging tmpfs: on top of
    `disk_mb`, so the task's own writes (its output among them) stop at exactly `disk_mb`, as
    in the process runtime; any slack lets an output past the copy's cap end up not copied."""
    sizes = [spec.input_file.stat().st_size]
    sizes += [len(value.get_secret_value().encode()) for value in spec.secrets.values()]
    return sum(-(-size // PAGE) * PAGE for size in sizes)


def seccomp_options(spec: SandboxSpec) -> list[str]:
    """The process runtime's filter as the container's profile; on a CPU it has no numbers
    for, dockerd's default profile stays."""
    arch = native_arch()
    if arch is None:
        return []
    profile = container_profile(arch, allow_user_namespaces=spec.allow_user_namespaces)
    return [f"seccomp={profile}"]
