"""Starting sandboxes through the launcher process (launcher_process.py): one per server process.

`start` hands the launcher what the child must be (argv, env, cwd, descriptors, and the
`ChildSetup`: cgroups to join, rlimits, the uid and gid to drop to) and returns the child's pid
once it has exec'd (or raises `OSError` with what failed, as `subprocess.Popen` does). The child
is this process's own: reap it with `wait4`, watch it with a pidfd.

The launcher is started on first use and again if it died; a process forked since (a Celery
worker's child) starts its own, since a launcher's children are its parent's.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from saassy.runtime.syscalls import native_arch

PROGRAM = Path(__file__).with_name("launcher_process.py")
START_TIMEOUT_S = 10.0
STOP_WAIT_S = 1.0
MAX_ERROR_BYTES = 4096
READY = b"ready"  # the launcher's first words (launcher_process.READY)


class LauncherUnavailable(OSError):
    """The launcher process could not be started or stopped answering."""


@dataclass(frozen=True)
class ChildSetup:
    """What the launcher does in the child before it execs: join `joins` (cgroup files it
    writes "0" into), set each (resource, value) of `rlimits` as both soft and hard limit, and
    drop to `uid`/`gid` with no supplementary group when they are set (a root platform)."""

    joins: tuple[str, ...] = ()
    rlimits: tuple[tuple[int, int], ...] = ()
    uid: int | None = None
    gid: int | None = None


@dataclass
class Launcher:
    """The client of one launcher process; thread-safe (one request at a time)."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _process: subprocess.Popen[bytes] | None = None
    _channel: socket.socket | None = None
    _owner: int = 0  # the pid that started it

    def start(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | str,
        stdio: tuple[int, int, int],
        pass_fds: Sequence[int] = (),
        setup: ChildSetup = ChildSetup(),
    ) -> int:
        """The pid of the child, once it runs `argv`; OSError if it could not."""
        request = json.dumps(
            {
                "argv": list(argv),
                "env": dict(env),
                "cwd": str(cwd),
                "targets": list(pass_fds),
                "joins": list(setup.joins),
                "rlimits": [list(pair) for pair in setup.rlimits],
                "uid": setup.uid,
                "gid": setup.gid,
            }
        ).encode()
        error_read, error_write = os.pipe2(os.O_CLOEXEC)
        try:
            with self._lock:
                pid = self._ask(request, [*stdio, *pass_fds, error_write])
            os.close(error_write)
            error_write = -1
            said = _read_all(error_read)  # EOF at the exec; else what failed
        finally:
            os.close(error_read)
            if error_write >= 0:
                os.close(error_write)
        if said:
            os.waitpid(pid, 0)  # it exits at once after saying so
            raise OSError(f"the sandbox launcher could not start {argv[0]}: {said}")
        return pid

    def run(
        self,
        argv: Sequence[str],
        *,
        setup: ChildSetup,
        pass_fds: Sequence[int] = (),
        timeout_s: float = START_TIMEOUT_S,
    ) -> tuple[int, str]:
        """Start `argv` as `start` does (cwd /, no environment), wait for it; its exit code and
        what it wrote on stderr. Blocking: for the runtime's probes at start."""
        read, write = os.pipe2(os.O_CLOEXEC)
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            pid = self.start(
                argv, env={}, cwd="/", stdio=(devnull, devnull, write), pass_fds=pass_fds,
                setup=setup,
            )  # fmt: skip
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
            os.close(devnull)
        said = b""
        try:
            deadline = time.monotonic() + timeout_s
            while (left := deadline - time.monotonic()) > 0 and select.select([read], [], [], left)[
                0
            ]:
                if not (chunk := os.read(read, MAX_ERROR_BYTES)):
                    break
                said += chunk
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        finally:
            os.close(read)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), said.decode(errors="replace").strip()

    def _ask(self, request: bytes, fds: list[int]) -> int:
        channel = self._running()
        try:
            socket.send_fds(channel, [request], fds)
            answer = channel.recv(MAX_ERROR_BYTES)
        except OSError:
            answer = b""
        if not answer:
            # Not asked again: it may have started the child before it died, and a program
            # must not run twice. The caller's clean-up kills what joined the sandbox's cgroup.
            self._stop()
            raise LauncherUnavailable("the sandbox launcher stopped answering")
        said = json.loads(answer)
        if "error" in said:
            raise OSError(f"the sandbox launcher could not fork: {said['error']}")
        return int(said["pid"])

    def _running(self) -> socket.socket:
        alive = self._process is not None and self._process.poll() is None
        if alive and self._owner == os.getpid() and self._channel is not None:
            return self._channel
        if self._owner != os.getpid():  # forked: that launcher's children are our parent's
            self._process = self._channel = None
        self._stop()
        arch = native_arch()
        clone = arch.number("clone") if arch is not None else None
        if clone is None:
            raise LauncherUnavailable("no clone syscall number known for this CPU")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(  # noqa: S603 - our own program, by path
                [sys.executable, "-I", "-S", str(PROGRAM), str(theirs.fileno()), str(clone)],
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env={},
            )  # fmt: skip
        except OSError as exc:
            ours.close()
            raise LauncherUnavailable(f"the sandbox launcher did not start: {exc}") from exc
        finally:
            theirs.close()
        self._channel, self._owner = ours, os.getpid()
        try:
            ours.settimeout(START_TIMEOUT_S)
            ready = ours.recv(len(READY))
            ours.settimeout(None)
        except OSError:
            ready = b""
        if ready != READY:
            self._stop()
            raise LauncherUnavailable(
                f"the sandbox launcher did not start ({sys.executable} -I -S {PROGRAM} said "
                "nothing; its error, if any, is in this process's output)"
            )
        return ours

    def _stop(self) -> None:
        if self._channel is not None:
            self._channel.close()  # the launcher reads the end and exits
        if self._process is not None:
            try:
                self._process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = self._channel = None

    def start_launcher(self) -> None:
        """Start the launcher now (a runtime's probe at start), not at the first sandbox."""
        with self._lock:
            self._running()

    def stop(self) -> None:
        with self._lock:
            if self._owner == os.getpid():
                self._stop()

    @property
    def pid(self) -> int | None:
        """The launcher process's, while it runs (for tests and the system page)."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, MAX_ERROR_BYTES):
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace").strip()


_LAUNCHER = Launcher()
atexit.register(_LAUNCHER.stop)


def launcher() -> Launcher:
    """This process's launcher."""
    return _LAUNCHER
