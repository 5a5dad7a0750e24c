"""Starting sandboxes through the launcher process (launcher_process.py): one per server process.

`start` hands the launcher what the child must be (argv, env, cwd, descriptors, and the
`ChildSetup`: cgroups to join, rlimits, the uid and gid to drop to) and returns the child's pid
once it has exec'd (or raises `OSError` with what failed, as `subprocess.Popen` does). The child
is this process's own: reap it with `wait4`, watch it with a pidfd.

The launcher is started by the runtime's probe and again if it died; a process forked since (a
Celery worker's child) starts its own, since a launcher's children are its parent's. The
launcher tells us the pid of each clone it forks ahead, so one it leaves behind when it dies is
still reaped here.
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
START_TIMEOUT_S = 10.0  # for the launcher to start, to answer, for a clone to exec
STOP_WAIT_S = 1.0
MAX_MESSAGE_BYTES = 4096
MAX_PASS_FDS = 248  # SCM_RIGHTS carries 253: the request, stdin, stdout, stderr, the error pipe
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
    _spare: int | None = None  # the clone it holds ready (our child)

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
        if len(pass_fds) > MAX_PASS_FDS:
            raise OSError(f"a sandbox takes at most {MAX_PASS_FDS} descriptors")
        request = _memory_file(
            json.dumps(
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
        )
        error_read, error_write = os.pipe2(os.O_CLOEXEC)
        try:
            with self._lock:
                pid = self._ask([request, *stdio, error_write, *pass_fds])
            os.close(error_write)
            error_write = -1
            said, exec_done = _read_until_exec(error_read)
        finally:
            for fd in (request, error_read, error_write):
                if fd >= 0:
                    os.close(fd)
        if not exec_done:
            _kill_and_reap(pid)
            raise OSError(f"the sandbox launcher's child did not start {argv[0]} in time")
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
                if not (chunk := os.read(read, MAX_MESSAGE_BYTES)):
                    break
                said += chunk
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        finally:
            os.close(read)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), said.decode(errors="replace").strip()

    def _ask(self, fds: list[int]) -> int:
        channel = self._running()
        try:
            socket.send_fds(channel, [b"r"], fds)
            while True:  # first what it forked meanwhile, then the answer
                said = json.loads(channel.recv(MAX_MESSAGE_BYTES) or b"null")
                if isinstance(said, dict) and "spare" in said:
                    self._spare = int(said["spare"])
                    continue
                break
        except (OSError, ValueError):  # a timeout, a reset, a launcher gone
            said = None
        if not isinstance(said, dict):
            # Not asked again: it may have handed the request over before it died, and a
            # program must not run twice; the clone that had it is killed and reaped.
            self._stop()
            raise LauncherUnavailable("the sandbox launcher stopped answering")
        if "error" in said:
            raise OSError(f"the sandbox launcher could not start a sandbox: {said['error']}")
        pid = int(said["pid"])
        if pid == self._spare:
            self._spare = None
        return pid

    def _running(self) -> socket.socket:
        alive = self._process is not None and self._process.poll() is None
        if alive and self._owner == os.getpid() and self._channel is not None:
            return self._channel
        if self._owner != os.getpid():  # forked: that launcher and its clones are our parent's
            self._process = self._channel = self._spare = None
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
            )
        except OSError as exc:
            ours.close()
            raise LauncherUnavailable(f"the sandbox launcher did not start: {exc}") from exc
        finally:
            theirs.close()
        self._channel, self._owner = ours, os.getpid()
        ours.settimeout(START_TIMEOUT_S)
        try:
            ready = ours.recv(len(READY))
        except OSError:
            ready = b""
        if ready != READY:
            process = self._process
            self._stop()
            ended = process.poll() if process is not None else None
            how = f"it exited with status {ended}" if ended is not None else "it did not answer"
            raise LauncherUnavailable(
                f"the sandbox launcher did not start ({how}; its error is in the server's "
                "output above)"
            )
        return ours

    def _stop(self) -> None:
        if self._channel is not None:
            self._learn_spares()
            self._channel.close()  # the launcher reads the end and exits
        if self._process is not None:
            try:
                self._process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._spare is not None:  # idle, or holding a request nobody will wait for
            _kill_and_reap(self._spare)
        self._process = self._channel = self._spare = None

    def _learn_spares(self) -> None:
        """The clones it announced that we have not read of yet (it forks one after it answers)."""
        assert self._channel is not None
        self._channel.setblocking(False)
        with contextlib.suppress(OSError, ValueError):
            while message := self._channel.recv(MAX_MESSAGE_BYTES):
                said = json.loads(message)
                if isinstance(said, dict) and "spare" in said:
                    self._spare = int(said["spare"])

    def start_launcher(self) -> None:
        """Start the launcher now (the runtime's probe at start), not at the first sandbox."""
        with self._lock:
            self._running()

    def stop(self) -> None:
        with self._lock:
            if self._owner == os.getpid():
                self._stop()

    def _forked(self) -> None:
        """In the child of a fork: a lock another thread held then would stay held."""
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The launcher process's, while it runs."""
        process = self._process
        alive = process is not None and process.poll() is None and self._owner == os.getpid()
        return process.pid if process is not None and alive else None


def _memory_file(content: bytes) -> int:
    fd = os.memfd_create("saassy-launch", os.MFD_CLOEXEC)
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view) :]
    return fd


def _read_until_exec(fd: int) -> tuple[str, bool]:
    """What the child wrote on its error pipe before the pipe closed (at its exec, or as it
    exited), and whether it closed within START_TIMEOUT_S."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + START_TIMEOUT_S
    while (left := deadline - time.monotonic()) > 0 and select.select([fd], [], [], left)[0]:
        if not (chunk := os.read(fd, MAX_MESSAGE_BYTES)):
            return b"".join(chunks).decode(errors="replace").strip(), True
        chunks.append(chunk)
    return "", False


def _kill_and_reap(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


_LAUNCHER = Launcher()
atexit.register(_LAUNCHER.stop)
os.register_at_fork(after_in_child=_LAUNCHER._forked)


def launcher() -> Launcher:
    """This process's launcher."""
    return _LAUNCHER
