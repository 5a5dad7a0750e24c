"""py-spy on the server during the throughput run (`--profile`): where the engine's time goes."""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PY_SPY_FALLBACK = Path("/tmp/probe/bin/py-spy")  # noqa: S108 - where this project's probe lives


def py_spy() -> str | None:
    found = os.environ.get("SAASSY_BENCH_PY_SPY") or shutil.which("py-spy")
    if found:
        return found
    return str(PY_SPY_FALLBACK) if PY_SPY_FALLBACK.exists() else None


@contextmanager
def record(pid: int, out: Path) -> Iterator[None]:
    """Sample `pid` (idle frames excluded) into `out` (collapsed stacks) while open."""
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy not found: pip install py-spy or set SAASSY_BENCH_PY_SPY")
    spy = subprocess.Popen(  # noqa: S603 - a profiler given by the operator
        [binary, "record", "--pid", str(pid), "--format", "raw", "--rate", "250",
         "--nonblocking", "--output", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(timeout=60)


def top_frames(collapsed: Path, limit: int = 25) -> list[tuple[str, float]]:
    """Share of samples in which each `function (file)` appears anywhere on the stack."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        for frame in set(stack.split(";")):
            inclusive[frame] += count
    return (
        [(frame, count / total) for frame, count in inclusive.most_common(limit)] if total else []
    )
