"""A listening socket inside a sandbox's network namespace, made and owned by the platform.

The sandbox's namespace has only `lo`; the platform opens 127.0.0.1:3128 there for its egress
proxy, so nothing of ours runs inside the sandbox and the socket tells the proxy whose policy
applies. `setns` changes the calling thread's namespace only: a short-lived thread of its own
enters, listens and leaves, so no pool thread is ever left in a sandbox's network.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
IP_FREEBIND = 15  # bind before bwrap has brought the sandbox's `lo` up
PROXY_PORT = 3128
BACKLOG = 128

# What a customer's task is told: why exactly is for the operator (banner, /ready, logs).
NETWORK_REFUSED = (
    "this task type needs network, which this server cannot give; its operator can see why"
)

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


def _listen_inside(pid: int, port: int) -> socket.socket:
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
            try:
                listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    listener.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
                    listener.bind(("127.0.0.1", port))
                    listener.listen(BACKLOG)
                    listener.setblocking(False)
                except BaseException:
                    listener.close()
                    raise
            finally:
                _setns(own)  # should this fail, the thread ends with it anyway
        finally:
            os.close(target)
    finally:
        os.close(own)
    return listener


def listen_in_netns(pid: int, port: int = PROXY_PORT) -> socket.socket:
    """A non-blocking socket listening on 127.0.0.1:`port` in the network namespace of `pid`."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter() -> None:
        try:
            made.append(_listen_inside(pid, port))
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=enter, name=f"netns {pid}", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


def can_enter_netns() -> bool:
    """`setns` into another user's network namespace needs CAP_SYS_ADMIN here (root)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) & (1 << 21))
    except (OSError, ValueError):
        pass
    return False


def network_unavailable(egress: object | None) -> str | None:
    """Why no sandbox gets network here, for the operator; None: the egress proxy runs and
    the platform can open its socket inside sandboxes."""
    if egress is None:
        return "no egress proxy runs in this process"
    if not can_enter_netns():
        return (
            "the egress proxy needs the platform to run as root: it opens its socket inside "
            "each sandbox's network namespace"
        )
    return None
