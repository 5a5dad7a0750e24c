"""Starting sandboxes through the launcher process (launcher_process.py): one per server process.

`send` hands the launcher what the child must be (argv, env, cwd, descriptors, and the
`ChildSetup`: cgroups to join, rlimits, the uid and gid to drop to) and returns at once; the
child's pid comes once it has exec'd (`Launching.wait`, or `Launching.started` on an event loop,
which goes on meanwhile), or `OSError` with what failed, as `subprocess.Popen` raises. The
child is this process's own: reap it with `wait4`, watch it with a pidfd.

The launcher is started by the runtime's probe and again if it died; a process forked since (a
Celery worker's child) starts its own, since a launcher's children are its parent's. The
launcher hands us each clone it forks (its pid and a socket to it) and we send the clone its
request ourselves: a start wakes one process, not two, and every clone is ours to reap.
"""

from __future__ import annotations

import asyncio
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

from saassy.runtime.launch import memory_file
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
    _asked: bool = False  # the next spare (a clone, our child) asked for, not yet read

    def send(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path | str,
        stdio: tuple[int, int, int],
        pass_fds: Sequence[int] = (),
        setup: ChildSetup = ChildSetup(),
    ) -> Launching:
        """Hand the request to a clone; the child, until it has exec'd `argv` (or failed):
        `.wait()` for its pid (blocking), or `await .started()` on an event loop."""
        if len(pass_fds) > MAX_PASS_FDS:
            raise OSError(f"a sandbox takes at most {MAX_PASS_FDS} descriptors")
        request = memory_file(
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
            ).encode(),
            "saassy-launch",
        )
        error_read, error_write = os.pipe2(os.O_CLOEXEC)
        try:
            with self._lock:
                pid = self._ask([request, *stdio, error_write, *pass_fds])
        except BaseException:
            os.close(error_read)
            raise
        finally:
            os.close(request)
            os.close(error_write)
        return Launching(pid, error_read, argv[0])

    def run(
        self,
        argv: Sequence[str],
        *,
        setup: ChildSetup,
        pass_fds: Sequence[int] = (),
        timeout_s: float = START_TIMEOUT_S,
    ) -> tuple[int, str]:
        """Start `argv` as `send` does (cwd /, no environment), wait for it; its exit code and
        what it wrote on stderr. Blocking: for the runtime's probes at start."""
        read, write = os.pipe2(os.O_CLOEXEC)
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            pid = self.send(
                argv, env={}, cwd="/", stdio=(devnull, devnull, write), pass_fds=pass_fds,
                setup=setup,
            ).wait()  # fmt: skip
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
            os.close(devnull)
        try:
            said = _read_until_closed(read, timeout_s)
        finally:
            os.close(read)
        if said is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), said or ""

    def _ask(self, fds: list[int]) -> int:
        """Send the request to a spare clone, and ask the launcher for the next one meanwhile.
        Each step may be tried again: a clone that did not take the request ran nothing."""
        for tries_left in (1, 0):
            spare = self._take_spare()
            try:
                socket.send_fds(spare.socket, [b"r"], fds)
            except OSError:
                spare.discard()
                if tries_left:
                    continue
                raise LauncherUnavailable(
                    "the sandbox launcher's clones end before they start"
                ) from None
            spare.socket.close()
            with contextlib.suppress(LauncherUnavailable):  # the next start restarts it
                self._ask_for_spare()
            return spare.pid
        raise AssertionError("unreachable")

    def _take_spare(self) -> Spare:
        """The clone asked for (forked as the last one was used: here already, unless a burst
        outran the launcher), else a new launcher's (once)."""
        for tries_left in (1, 0):
            channel = self._running()
            try:
                if not self._asked:
                    self._ask_for_spare()
                message, fds, _, _ = socket.recv_fds(channel, MAX_MESSAGE_BYTES, 1)
                said = json.loads(message or b"null")
            except (OSError, ValueError):  # a timeout, a reset, a launcher gone
                said, fds = None, []
            self._asked = False
            if isinstance(said, dict) and "spare" in said and len(fds) == 1:
                os.set_inheritable(fds[0], False)  # received without close-on-exec
                return Spare(int(said["spare"]), socket.socket(fileno=fds[0]))
            for fd in fds:
                os.close(fd)
            self._stop()
            error = said.get("error") if isinstance(said, dict) else None
            if error or not tries_left:
                raise LauncherUnavailable(
                    f"the sandbox launcher could not fork: {error}"
                    if error
                    else "the sandbox launcher stopped answering"
                )
        raise AssertionError("unreachable")

    def _ask_for_spare(self) -> None:
        channel = self._running()
        try:
            channel.send(b"s")
        except OSError as exc:
            self._stop()
            raise LauncherUnavailable("the sandbox launcher stopped answering") from exc
        self._asked = True

    def _running(self) -> socket.socket:
        alive = self._process is not None and self._process.poll() is None
        if alive and self._owner == os.getpid() and self._channel is not None:
            return self._channel
        if self._owner != os.getpid():  # a fork the at-fork hook missed: all that is the parent's
            self._process = self._channel = None
            self._asked = False
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
        """The launcher ended, and every clone it forked for us reaped: any it sent that we had
        not read (drained once it has exited, so none is missed)."""
        if self._process is not None and self._channel is not None:
            with contextlib.suppress(OSError):
                self._channel.shutdown(socket.SHUT_WR)  # it reads the end and exits
            try:
                self._process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._reap_unread_spares(self._channel)
        if self._channel is not None:
            self._channel.close()
        self._process = self._channel = None
        self._asked = False

    def _reap_unread_spares(self, channel: socket.socket) -> None:
        """Clones it forked for us that we have not read of yet: ended and reaped, not left
        zombies (each one's socket goes with its unread message). Its process is gone: the
        channel holds all it ever sent, then the end."""
        channel.setblocking(False)
        with contextlib.suppress(OSError, ValueError):
            while True:
                message, fds, _, _ = socket.recv_fds(channel, MAX_MESSAGE_BYTES, 1)
                if not message:
                    return
                for fd in fds:
                    os.close(fd)
                said = json.loads(message)
                if isinstance(said, dict) and "spare" in said:
                    _kill_and_reap(int(said["spare"]))

    def start_launcher(self) -> None:
        """Start the launcher now (the runtime's probe at start), not at the first sandbox."""
        with self._lock:
            self._running()

    def stop(self) -> None:
        with self._lock:
            if self._owner == os.getpid():
                self._stop()

    def _forked(self) -> None:
        """In the child of a fork: a lock another thread held then would stay held, and the
        launcher and its clones are the parent's (our copies of their sockets are closed, so
        the parent's launcher still sees its end when the parent closes it)."""
        self._lock = threading.Lock()
        if self._channel is not None:
            self._channel.close()
        self._process = self._channel = None
        self._asked = False
        self._owner = 0

    @property
    def pid(self) -> int | None:
        """The launcher process's, while it runs."""
        process = self._process
        alive = process is not None and process.poll() is None and self._owner == os.getpid()
        return process.pid if process is not None and alive else None


@dataclass
class Spare:
    """A clone of the launcher waiting for its request on `socket`: our child."""

    pid: int
    socket: socket.socket

    def discard(self) -> None:
        self.socket.close()  # it reads the end and exits
        _kill_and_reap(self.pid)


@dataclass
class Launching:
    """A clone that has its request: our child, on its way to exec `program`. Its error pipe
    (`error_fd`) closes at the exec; what the clone wrote there first says what failed. Whoever
    holds it calls `wait` or `started` once: on a failure, a timeout or a cancellation the
    child is killed and reaped, with its session once it has one (what it started after its
    exec goes too), whatever it had got to."""

    pid: int
    error_fd: int
    program: str

    def wait(self) -> int:
        """Blocking: the pid once the child has exec'd."""
        error_fd = self._take_pipe()
        try:
            said = _read_until_closed(error_fd, START_TIMEOUT_S)
            return self._started(said)
        except BaseException:
            _kill_session_and_reap(self.pid)
            raise
        finally:
            os.close(error_fd)

    async def started(self) -> int:
        """`wait` on the running loop: the loop goes on while the clone sets up and execs."""
        loop = asyncio.get_running_loop()
        closed: asyncio.Future[str] = loop.create_future()
        chunks: list[bytes] = []

        def readable() -> None:
            try:
                chunk = os.read(error_fd, MAX_MESSAGE_BYTES)
            except BlockingIOError:
                return
            except OSError as exc:
                if not closed.done():
                    closed.set_exception(exc)
                return
            if chunk:
                chunks.append(chunk)
            elif not closed.done():
                closed.set_result(b"".join(chunks).decode(errors="replace").strip())

        error_fd = self._take_pipe()
        watching = False
        try:
            os.set_blocking(error_fd, False)
            loop.add_reader(error_fd, readable)
            watching = True
            try:
                async with asyncio.timeout(START_TIMEOUT_S):
                    said: str | None = await closed
            except TimeoutError:
                said = None
            return self._started(said)
        except BaseException:
            _kill_session_and_reap(self.pid)
            raise
        finally:
            if watching:
                loop.remove_reader(error_fd)
            os.close(error_fd)

    def _take_pipe(self) -> int:
        """The error pipe, once: a second wait would watch whatever now has its number."""
        error_fd, self.error_fd = self.error_fd, -1
        if error_fd < 0:
            raise RuntimeError("a launch is waited for once")
        return error_fd

    def _started(self, said: str | None) -> int:
        if said is None:
            raise OSError(f"the sandbox launcher's child did not start {self.program} in time")
        if said:
            raise OSError(f"the sandbox launcher could not start {self.program}: {said}")
        return self.pid


def _read_until_closed(fd: int, timeout_s: float) -> str | None:
    """What was written on a pipe until its last writer closed it (at the exec, or the exit),
    as text; None if that took longer than `timeout_s`. `poll`, not `select`: a busy server's
    descriptors are numbered past select's 1024."""
    chunks: list[bytes] = []
    waiting = select.poll()
    waiting.register(fd, select.POLLIN)
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        if not waiting.poll(left * 1000):
            continue
        if not (chunk := os.read(fd, MAX_MESSAGE_BYTES)):
            return b"".join(chunks).decode(errors="replace").strip()
        chunks.append(chunk)
    return None


def _kill_session_and_reap(pid: int) -> None:
    """A clone given a request: its session (from its `setsid` on; until then no group has its
    number, and it cannot be reused while the clone is our unreaped child), then itself."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    _kill_and_reap(pid)


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
