"""Starting a sandbox's first process without stalling the event loop, on any loop.

uvloop (which uvicorn picks when installed) spawns with a full `fork()`: for a server of a few
hundred MB that costs ~10 ms of CPU and ~40 ms of stalled loop per sandbox. `subprocess.Popen`
uses `vfork()` (no page tables copied); a launch with a `ChildSetup` (a sandbox: cgroups to join,
rlimits, a uid to drop to) goes through the launcher process (launcher.py), which forks itself,
a small process, and makes the child ours. A sandbox's own preparation (its work dir, cgroup and
command) runs just before the spawn, in the same place: on the loop when it is small (a few
system calls on little data; the loop then awaits the child's `exec` like any descriptor, as a
clone may wait milliseconds for a CPU on a busy machine), else on a worker thread, in one hop
(kit/threads.py says what a hop costs), which waits for the exec itself. The exit is
watched through a pidfd on the loop, so no thread waits per sandbox; without pidfds (old
kernels) a worker thread does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from saassy.kit.threads import in_thread, until_done
from saassy.runtime.launcher import ChildSetup, Launching, launcher
from saassy.runtime.pipes import PipeReader, read_into

T = TypeVar("T")
UNKNOWN_EXIT = -1  # a launcher's child reaped by someone else: never expected


class SpawnedProcess:
    """The parts of `asyncio.subprocess.Process` a sandbox handle uses: pid, output, exit."""

    def __init__(self, started: Started, stdout_fd: int, stderr_fd: int) -> None:
        self._popen = started.popen
        self.pid = started.pid
        self.stdout = PipeReader()
        self.stderr = PipeReader()
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pidfd: int | None = None
        self.rusage: resource.struct_rusage | None = None  # once reaped
        read_into(stdout_fd, self.stdout)
        read_into(stderr_fd, self.stderr)

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def _watch_exit(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # no pidfds here: a thread waits instead
            task = asyncio.ensure_future(asyncio.to_thread(self._wait4, 0))
            task.add_done_callback(lambda done: self._exited.set_result(done.result() or 0))
            return
        self._pidfd = pidfd
        loop.add_reader(pidfd, self._reap)

    def _reap(self) -> None:
        pidfd = self._pidfd
        if pidfd is None:
            return  # a wake-up already queued when the first one closed it
        returncode = self._wait4(os.WNOHANG)
        if returncode is None:
            return  # not yet (a spurious wake-up)
        # Closed exactly once: a second close could hit a descriptor another thread just opened
        # under the same number.
        self._pidfd = None
        asyncio.get_running_loop().remove_reader(pidfd)
        os.close(pidfd)
        self._exited.set_result(returncode)

    def _wait4(self, options: int) -> int | None:
        """Reap the child and keep its rusage; its exit code (negative: the signal), or None."""
        try:
            pid, status, rusage = os.wait4(self.pid, options)
        except ChildProcessError:  # reaped elsewhere (never by us): Popen knows how it ended
            return self._popen.poll() if self._popen is not None else UNKNOWN_EXIT
        if pid == 0:
            return None
        self.rusage = rusage
        returncode = os.waitstatus_to_exitcode(status)
        if self._popen is not None:
            self._popen.returncode = returncode
        return returncode


@dataclass(frozen=True)
class Launch:
    """What to start: the argv, the descriptors that stay open in the child, and what the
    launcher does in it before the exec (None: a plain spawn)."""

    argv: Sequence[str]
    pass_fds: Sequence[int] = ()
    setup: ChildSetup | None = None


@dataclass(frozen=True)
class Started:
    pid: int
    popen: subprocess.Popen[bytes] | None = None  # a plain spawn's


async def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, pass_fds: Sequence[int] = ()
) -> SpawnedProcess:
    """Start `argv` in a new session with piped stdout and stderr and stdin from /dev/null;
    `pass_fds` stay open, under the same numbers, in the child."""
    return await spawn_prepared(lambda: Launch(argv, pass_fds), env=env, cwd=cwd)


async def spawn_prepared(
    prepare: Callable[[], Launch],
    *,
    env: Mapping[str, str],
    cwd: Path,
    on_loop: bool = False,
) -> SpawnedProcess:
    """Run the blocking `prepare` on a worker thread and start what it returns there, as
    `spawn` does; or both right here when `on_loop` (a small preparation: kit/threads.py).
    Cancelled meanwhile, it waits for the thread, and a child already started is killed with
    its process group and reaped before the cancellation goes on."""
    stdout_read, stdout_write = os.pipe()
    stderr_read, stderr_write = os.pipe()

    def start() -> Started | Launching:
        launch = prepare()
        if launch.setup is not None:
            stdio = (_devnull(), stdout_write, stderr_write)
            try:
                launching = launcher().send(
                    launch.argv,
                    env=env,
                    cwd=cwd,
                    stdio=stdio,
                    pass_fds=launch.pass_fds,
                    setup=launch.setup,
                )
            finally:
                os.close(stdio[0])
            # On the loop, the exec is awaited below: the loop need not stop for a clone
            # that waits for a CPU on a busy machine (~5 ms a start in a drain).
            return launching if on_loop else Started(launching.wait())
        popen = subprocess.Popen(  # noqa: S603 - the runtime's own launch command
            list(launch.argv),
            stdin=subprocess.DEVNULL,
            stdout=stdout_write,
            stderr=stderr_write,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            pass_fds=tuple(launch.pass_fds),
        )
        return Started(popen.pid, popen)

    started = _done_now(start) if on_loop else in_thread(start)
    try:
        child = await asyncio.shield(started)
        if isinstance(child, Launching):  # failed or cancelled, it kills and reaps the child
            child = Started(await child.started())
    except BaseException:
        os.close(stdout_read)
        os.close(stderr_read)
        # However often cancelled, and when the loop shuts down: the caller's clean-up (closing
        # descriptors, removing the cgroup, giving back the uid) follows, and must not run
        # under a preparation still going on, nor leave the child it then starts to nobody.
        await until_done(started)
        if not started.cancelled() and started.exception() is None:
            orphan = started.result()
            if isinstance(orphan, Started):
                with contextlib.suppress(BaseException):
                    await _stop_orphan(orphan)
        raise
    finally:
        os.close(stdout_write)  # the child has its own copies; the thread is done with them
        os.close(stderr_write)
    process = SpawnedProcess(child, stdout_read, stderr_read)
    process._watch_exit()
    return process


def _done_now(func: Callable[[], T]) -> asyncio.Future[T]:
    """`func` called here, as a future already done (with its result or exception)."""
    done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
    try:
        done.set_result(func())
    except BaseException as exc:  # raised where it is awaited, after the same clean-up
        done.set_exception(exc)
    return done


def _devnull() -> int:
    return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


async def _stop_orphan(child: Started) -> None:
    """A child started for a caller that is gone: its session killed, then reaped."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    if child.popen is not None:
        await asyncio.to_thread(child.popen.wait)
    else:
        with contextlib.suppress(ChildProcessError):
            await asyncio.to_thread(os.waitpid, child.pid, 0)
