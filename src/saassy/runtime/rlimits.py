"""The fallback when bubblewrap or writable cgroups are missing: rlimits and a process group.

Best effort only, and the runtime says so loudly: no namespaces (the program sees the host's
filesystem and network as the platform's user), memory capped per process through RLIMIT_AS, CPU
time per process through RLIMIT_CPU, file size through RLIMIT_FSIZE, and a process group killed on
timeout (a child that calls setsid escapes it). A tiny single-threaded launcher sets the limits,
runs the program in its own group, reaps it with wait4 and reports its rusage over a pipe.
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

from saassy.runtime.base import SandboxSpec, Usage
from saassy.runtime.environment import sandbox_env
from saassy.runtime.sandbox import work_dir_name
from saassy.runtime.supervise import SupervisedProcess

LAUNCHER = """
import json, os, resource, sys
fd, limits, argv = int(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3:]
os.set_inheritable(fd, False)
pid = os.fork()
if pid == 0:
    os.setpgid(0, 0)
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))
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


def _user_threads(uid: int) -> int:
    """Tasks (threads) this uid runs now: what RLIMIT_NPROC counts."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            if os.stat(f"/proc/{entry}").st_uid == uid:
                total += len(os.listdir(f"/proc/{entry}/task"))
    return total


def rlimits_for(spec: SandboxSpec) -> dict[str, int]:
    limits = spec.limits
    chosen = {
        "RLIMIT_AS": limits.memory_mb * 1024 * 1024,
        "RLIMIT_CPU": math.ceil(limits.timeout_s * max(limits.cpus, 1.0)) + 1,
        "RLIMIT_FSIZE": limits.disk_mb * 1024 * 1024,
        "RLIMIT_CORE": 0,
    }
    uid = os.getuid()
    if uid != 0 and hasattr(resource, "RLIMIT_NPROC") and os.path.isdir("/proc"):
        chosen["RLIMIT_NPROC"] = _user_threads(uid) + limits.pids  # root ignores NPROC
    return chosen


class RlimitsSandbox(SupervisedProcess):
    """A plain subprocess in its own session, under rlimits."""

    def __init__(self, spec: SandboxSpec, work_root: Path) -> None:
        super().__init__(spec)
        self.work_dir = work_root / work_dir_name(spec.name)
        self._status: asyncio.StreamReader | None = None
        self._program_pid: int | None = None

    async def launch(self) -> None:
        spec = self.spec
        home = self.work_dir / "home"
        home.mkdir(parents=True, mode=0o700)
        spec.output_dir.mkdir(parents=True, exist_ok=True)
        events = spec.events_file or self.work_dir / "events.jsonl"
        events.touch()
        env = sandbox_env(
            spec,
            input_path=str(spec.input_file),
            output_path=str(spec.output_dir),
            events_path=str(events),
            home=str(home),
        )
        read_fd, write_fd = os.pipe()
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-S", "-c", LAUNCHER,
                str(write_fd), json.dumps(rlimits_for(spec)), *spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=home,
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
        return False

    async def _release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(shutil.rmtree, self.work_dir)
