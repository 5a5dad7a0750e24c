"""The unisolated runner, only where the operator opted in: rlimits and a process group.

No sandbox, and the runtime says so in every banner: no namespaces (the program sees the host's
filesystem and network), memory capped per process through RLIMIT_AS, CPU time per process
through RLIMIT_CPU, file size through RLIMIT_FSIZE, and a process group killed on timeout (a
child that calls setsid escapes it). A tiny single-threaded launcher sets the limits, drops to
the sandbox uid when the platform is root (never uid 0), runs the program in its own group,
reaps it with wait4 and reports its rusage over a pipe. The program's files live in a work dir
of its own, copied out after the exit, as in the namespace sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import resource
import shutil
import signal
import sys
from pathlib import Path

import structlog

from saassy.runtime.artifacts import take_output
from saassy.runtime.base import SandboxSpec, Usage
from saassy.runtime.environment import sandbox_env
from saassy.runtime.identity import Identity
from saassy.runtime.proctree import user_threads
from saassy.runtime.supervise import SupervisedProcess
from saassy.runtime.workroot import work_dir_name

log = structlog.get_logger(__name__)

LAUNCHER = """
import json, os, resource, sys
fd, limits, ids, argv = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3], sys.argv[4:]
os.set_inheritable(fd, False)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
    if ids:
        uid, gid = (int(part) for part in ids.split(":"))
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"saassy: cannot run {argv[0]}: {exc}\\n".encode())
        os._exit(127)
os.write(fd, f"{pid}\\n".encode())
_, status, ru = os.wait4(pid, 0)
os.write(fd, json.dumps({"cpu": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss}).encode())
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def rlimits_for(spec: SandboxSpec, uid: int) -> dict[str, int]:
    """The launcher's limits for a program that will run as `uid`."""
    limits = spec.limits
    chosen = {
        "RLIMIT_AS": limits.memory_mb * 1024 * 1024,
        "RLIMIT_CPU": math.ceil(limits.timeout_s * max(limits.cpus, 1.0)) + 1,
        "RLIMIT_FSIZE": limits.disk_mb * 1024 * 1024,
        "RLIMIT_CORE": 0,
    }
    if uid != 0 and hasattr(resource, "RLIMIT_NPROC") and os.path.isdir("/proc"):
        chosen["RLIMIT_NPROC"] = user_threads(uid) + limits.pids  # root ignores NPROC
    return chosen


class RlimitsSandbox(SupervisedProcess):
    """A plain subprocess in its own session, under rlimits, never as uid 0."""

    def __init__(self, spec: SandboxSpec, work_root: Path, identity: Identity) -> None:
        super().__init__(spec)
        self.work_dir = work_root / work_dir_name(spec.name)
        self.uid, self.gid = identity.uid, identity.gid
        self._status: asyncio.StreamReader | None = None
        self._program_pid: int | None = None

    def _prepare_files(self) -> None:
        """The program's own dir (0711): input (read-only), output, events, secrets and home."""
        self.work_dir.mkdir(mode=0o711)
        self.work_dir.chmod(0o711)
        shutil.copyfile(self.spec.input_file, self.work_dir / "input.json")
        (self.work_dir / "input.json").chmod(0o444)
        owned = [self.work_dir / name for name in ("output", "home", "secrets")]
        for directory in owned:
            directory.mkdir(mode=0o700)
        (self.work_dir / "events.jsonl").touch(mode=0o600)
        for name, secret in self.spec.secrets.items():
            path = self.work_dir / "secrets" / name
            path.write_text(secret.get_secret_value())
            path.chmod(0o400)
            owned.append(path)
        if os.geteuid() == 0:
            for path in [*owned, self.work_dir / "events.jsonl"]:
                os.chown(path, self.uid, self.gid)

    async def launch(self) -> None:
        spec = self.spec
        try:
            await asyncio.to_thread(self._prepare_files)
        except BaseException:
            await self._release()
            raise
        env = sandbox_env(
            spec,
            input_path=str(self.work_dir / "input.json"),
            output_path=str(self.work_dir / "output"),
            events_path=str(self.work_dir / "events.jsonl"),
            secrets_path=str(self.work_dir / "secrets"),
            home=str(self.work_dir / "home"),
        )
        ids = f"{self.uid}:{self.gid}" if os.geteuid() == 0 else ""
        read_fd, write_fd = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", "-c", LAUNCHER,
                str(write_fd), json.dumps(rlimits_for(spec, self.uid)), ids, *spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=self.work_dir / "home",
                pass_fds=(write_fd,),
                start_new_session=True,
            )  # fmt: skip
        except BaseException:
            os.close(read_fd)
            await self._release()
            raise
        finally:
            os.close(write_fd)
        loop = asyncio.get_running_loop()
        self._status = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(self._status)
        await loop.connect_read_pipe(lambda: protocol, os.fdopen(read_fd, "rb", buffering=0))
        self._supervise(process)

    def live_events_file(self) -> Path | None:
        return self.work_dir / "events.jsonl"

    async def _read_program_pid(self) -> int | None:
        if self._program_pid is None and self._status is not None:
            with contextlib.suppress(TimeoutError, ValueError):
                async with asyncio.timeout(1.0):
                    line = await self._status.readline()
                self._program_pid = int(line)
        return self._program_pid

    async def _kill_tree(self) -> None:
        if self._process is None:
            return
        # The program's group only: the launcher must live to reap it and report its rusage.
        group = await self._read_program_pid() or self._process.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)

    async def _measure_now(self) -> Usage:
        return Usage(0.0, 0, self.wall_seconds)

    async def _finish(self) -> bool:
        await self._kill_tree()
        report: dict[str, float] = {}
        if self._status is not None:
            with contextlib.suppress(TimeoutError, ValueError):
                async with asyncio.timeout(1.0):
                    report = json.loads(await self._status.read() or b"{}")
        peak = int(report.get("maxrss_kb", 0)) * 1024  # one process's peak, not the tree's
        self._usage = Usage(float(report.get("cpu", 0.0)), peak, self.wall_seconds)
        await asyncio.to_thread(self._copy_out)
        return False

    def _copy_out(self) -> None:
        take_output(
            self.work_dir, self.spec.output_dir, self.spec.events_file, self.spec.limits.disk_mb
        )

    async def _release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(shutil.rmtree, self.work_dir)
