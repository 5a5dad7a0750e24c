"""A sandbox's processes seen through /proc, where no cgroup counts them for us."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for thread in threads:
        with contextlib.suppress(OSError):
            listed = Path(f"/proc/{pid}/task/{thread}/children").read_text()
            found += [int(child) for child in listed.split()]
    return found


def tree_usage(root: int) -> tuple[float, int]:
    """(CPU seconds, resident bytes) of `root`'s descendants now: their own CPU and their
    reaped children's, and the memory they hold (/proc stat and statm)."""
    ticks, pages, pending = 0, 0, _children(root)
    while pending:
        pid = pending.pop()
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
            pages += int(fields[21])  # rss
            pending += _children(pid)
    return ticks / CLOCK_TICKS, pages * PAGE_SIZE


def user_threads(uid: int) -> int:
    """Tasks (threads) this uid runs now: what RLIMIT_NPROC counts."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            if os.stat(f"/proc/{entry}").st_uid == uid:
                total += len(os.listdir(f"/proc/{entry}/task"))
    return total


def first_child(pid: int) -> int | None:
    """bwrap's child, the sandbox's pid 1."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None
