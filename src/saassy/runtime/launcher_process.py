"""The sandbox launcher: a small root process that starts each sandbox's bwrap in one step.

Run by path with the standard library alone (`python -I -S launcher_process.py SOCKET CLONE`) by
`launcher.py`, which it serves over an inherited socket and nothing else. Asked, it forks a
clone of itself (CLONE_PARENT: the clone is the server's own child, which the server reaps,
reads the rusage of and watches through a pidfd, as any child it spawned) and hands the server
the clone's pid and a socket to it; the server asks for the next one as it uses one, and sends
the clone its request itself. In that clone, before exec'ing bwrap: a new session,
the descriptors at their numbers and every other one closed, the sandbox's cgroups joined, its
rlimits set, on a root platform root dropped to the sandbox's uid and gid with no supplementary
group and no-new-privs, the cwd. A failure there is written to the request's error pipe (closed
on exec); the clone exits 125.

A request is a memory file holding its JSON, then the descriptors: stdin, stdout, stderr, the
error pipe, the passed ones (one message of SCM_RIGHTS, so any size of request fits).

Exec'ing `sh` to join and set limits, then `chroot` or `setpriv` to drop, cost two program loads
per sandbox (~1.5 ms of CPU and of latency on a 2-core VM); forking this small process costs less
than one. Not a general-purpose module: it imports nothing of Saassy's. It must stay
single-threaded: a clone made by a raw `clone` runs on without the after-fork hooks a thread
would need (glibc's and CPython's).
"""

import contextlib
import ctypes
import fcntl
import gc
import json
import os
import resource
import signal
import socket
import sys
from typing import Any

CLONE_PARENT = 0x00008000
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
MAX_FDS = 253  # SCM_RIGHTS' own limit
MAX_MESSAGE_BYTES = 64
CHILD_FAILED = 125
READY = b"ready"
IGNORED: list[int] = []  # the signals ignored here, which every clone sets back to default

# PyDLL keeps the GIL across the call: the clone's child then holds it as its parent did.
libc = ctypes.PyDLL(None, use_errno=True)


def clone_parent(clone_number: int) -> int:
    """fork(), but the child's parent is ours (the server), not this process."""
    pid = libc.syscall(clone_number, CLONE_PARENT | signal.SIGCHLD, 0, 0, 0, 0)
    if pid < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return int(pid)


def receive(channel: socket.socket) -> list[int] | None:
    """The descriptors of the next request; None when the other end closed. A message whose
    descriptors did not all fit is refused (its error pipe may be among those lost)."""
    message, fds, flags, _ = socket.recv_fds(channel, MAX_MESSAGE_BYTES, MAX_FDS)
    if not message:
        return None
    if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC) or len(fds) < 5:
        for fd in fds:
            os.close(fd)
        raise ValueError("a request with too many descriptors")
    return fds


def read_request(fd: int) -> dict[str, Any]:
    request: dict[str, Any] = json.loads(os.pread(fd, os.fstat(fd).st_size, 0))
    return request


def child(fds: list[int]) -> None:
    """In the clone: set up as the request says, exec bwrap; never returns."""
    request_fd, *stdio, error_fd = fds[:5]
    passed = fds[5:]
    stage = "setup"
    try:
        request = read_request(request_fd)
        # An exec keeps what is ignored: here what Python ignores, SIGINT (`main`), and
        # whatever the server was started with ignored. (glibc keeps 32 and 33 to itself.)
        for number in IGNORED:
            signal.signal(number, signal.SIG_DFL)
        stage = "setsid"
        os.setsid()
        stage = "descriptors"
        # stdin, stdout, stderr, the passed ones at their numbers; the error pipe, closed on
        # exec. Each waits above every number in play first, with room made for that up to the
        # hard limit (the program gets the soft one back).
        targets = [0, 1, 2, *request["targets"]]
        if len(targets) != len(stdio) + len(passed):
            raise ValueError("the request's descriptors do not match its targets")
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        above = max(*targets, *fds) + 1
        if above + len(fds) > hard:
            raise OSError(f"descriptors up to {above + len(fds)} needed; the hard limit is {hard}")
        parked = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, above) for fd in [*stdio, *passed]]
        error_fd = fcntl.fcntl(error_fd, fcntl.F_DUPFD_CLOEXEC, above)
        for target, fd in zip(targets, parked, strict=True):
            os.dup2(fd, target, inheritable=True)
        _close_all_but({*targets, error_fd})
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for path in request["joins"]:
            stage = f"joining {path}"
            joined = os.open(path, os.O_WRONLY)
            os.write(joined, b"0")  # the writer itself (cgroups.py: join_files)
            os.close(joined)
        stage = "rlimits"
        for number, value in request["rlimits"]:
            resource.setrlimit(number, (value, value))
        if request["uid"] is not None:
            stage = "dropping root"
            os.setgroups([])
            os.setresgid(request["gid"], request["gid"], request["gid"])
            os.setresuid(request["uid"], request["uid"], request["uid"])
            # What setpriv did before a setuid-root bwrap: the bit must not make it root again.
            stage = "no-new-privs"
            if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        stage = "cwd"
        os.chdir(request["cwd"])
        stage = "exec"
        argv = request["argv"]
        os.execve(argv[0], argv, request["env"])  # noqa: S606 - bwrap, as the server asked
    except BaseException as exc:  # whatever it was, the server must hear of it
        with contextlib.suppress(OSError):
            os.write(error_fd, f"{stage}: {exc}".encode(errors="replace")[:4096])
    finally:
        os._exit(CHILD_FAILED)


def _close_all_but(keep: set[int]) -> None:
    """Every other descriptor (this process's sockets above all) closed."""
    low = 0
    for fd in sorted(keep):
        if low < fd:  # closerange(n, n) closed everything from n on (CPython 3.11)
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, resource.getrlimit(resource.RLIMIT_NOFILE)[1])


def fork_spare(clone_number: int, channel: socket.socket) -> None:
    """A clone that waits for a request, handed to the server: its pid, and the socket end
    the server sends the request on (the server is its parent, and its only peer)."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        pid = clone_parent(clone_number)
        if pid == 0:
            gc.disable()  # it lives for one request: a collection would only dirty shared pages
            channel.close()
            ours.close()
            wait_for_request(theirs)
        socket.send_fds(channel, [json.dumps({"spare": pid}).encode()], [ours.fileno()])
    finally:
        ours.close()
        theirs.close()


def warm_up() -> None:
    """In a clone while it waits: the calls `child` makes, on nothing that matters, so the
    copy-on-write faults they take (each page of the interpreter's memory they write) come now,
    not between a sandbox's request and its start."""
    sample = os.memfd_create("warm", os.MFD_CLOEXEC)
    try:
        os.write(sample, SAMPLE_REQUEST)
        request = read_request(sample)
        for number in IGNORED:
            signal.getsignal(number)
        resource.getrlimit(resource.RLIMIT_NOFILE)
        targets = [0, 1, 2, *request["targets"]]
        above = max(*targets, sample) + 1
        parked = fcntl.fcntl(sample, fcntl.F_DUPFD_CLOEXEC, above)
        os.dup2(parked, parked, inheritable=False)
        os.close(parked)
        for path in request["joins"]:
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_RDONLY))
        for number, _ in request["rlimits"]:
            resource.getrlimit(number)
        os.getgroups()
        os.getresuid()
        libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
        os.chdir("/")
    finally:
        os.close(sample)


SAMPLE_REQUEST = json.dumps(
    {
        "argv": ["./bwrap", "--args", "12", "--", "/usr/bin/python3", "-c", "x"],
        "env": {"PATH": "/usr/bin:/bin", "HOME": "/home", "SAASSY_TASK_ID": "x" * 36},
        "cwd": "/",
        "targets": [12, 13, 14],
        "joins": ["/dev/null"],
        "rlimits": [[resource.RLIMIT_NPROC, 100], [resource.RLIMIT_CORE, 0]],
        "uid": 60000,
        "gid": 60000,
    }
).encode()


def wait_for_request(waiting: socket.socket) -> None:
    """In a spare: the request the server sends, then `child`; never returns."""
    try:
        with contextlib.suppress(Exception):
            warm_up()
        fds = receive(waiting)
        waiting.close()
        if fds is not None:
            child(fds)
    finally:
        os._exit(CHILD_FAILED)


def serve(channel: socket.socket, clone_number: int) -> None:
    """A spare for each ask, until the server closes its end."""
    while True:
        try:
            asked = channel.recv(MAX_MESSAGE_BYTES)
        except OSError:
            return
        if not asked:
            return
        try:
            fork_spare(clone_number, channel)
        except OSError as exc:  # said to the server, which raises it; unless it is gone
            try:
                channel.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
            except OSError:
                return


def main() -> None:
    global IGNORED
    channel = socket.socket(fileno=int(sys.argv[1]))
    channel.set_inheritable(False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server's Ctrl-C is the server's to handle
    IGNORED = [n for n in sorted(signal.valid_signals()) if signal.getsignal(n) == signal.SIG_IGN]
    gc.freeze()  # what start-up made is never collected, here or in a clone
    channel.send(READY)
    serve(channel, int(sys.argv[2]))


if __name__ == "__main__":
    main()
