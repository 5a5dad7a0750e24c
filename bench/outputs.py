"""`python -m bench.outputs`: what collecting a hostile output dir costs the host, in CPU.

A program that writes 100,000 empty files in a second must not cost the platform minutes: the
copy out of the sandbox's tmpfs stops at the hard ceiling and the collector at the task type's
limit. Each figure is the median of 3 runs of the host's own work (process CPU time), on a
tmpfs like the sandbox's. Needs root (it mounts the tmpfs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table

from saassy.runtime.artifacts import OutputLimits, OutputOverLimit, collect_artifacts, copy_out
from saassy.runtime.mounts import mount_tmpfs, unmount

DEFAULT_LIMITS = OutputLimits(max_entries=1000, max_depth=16, max_bytes=1024 * 2**20)
RUNS = 3


def cpu_seconds(work: Callable[[], object]) -> float:
    began = time.process_time()
    with contextlib.suppress(OutputOverLimit):  # the expected end of a hostile output
        work()
    return time.process_time() - began


def median_cpu(staged: Path, files: int, scratch: Path) -> tuple[float, float]:
    """(copy out, collect) CPU seconds for an output dir of `files` empty files."""
    for n in range(files):
        os.close(os.open(staged / str(n), os.O_CREAT | os.O_WRONLY, 0o600))
    copies, collects = [], []
    for run in range(RUNS):
        copied = scratch / f"copy-{files}-{run}"
        copies.append(cpu_seconds(partial(copy_out, staged, copied)))
        collects.append(cpu_seconds(partial(collect_artifacts, copied, DEFAULT_LIMITS)))
        shutil.rmtree(copied)
    shutil.rmtree(staged)
    staged.mkdir()
    return statistics.median(copies), statistics.median(collects)


def main() -> None:
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="saassy-bench-outputs-"))
    mount_tmpfs(root, size_bytes=512 * 2**20, uid=os.getuid(), gid=os.getgid())
    try:
        staged = root / "staged"
        staged.mkdir()
        table = Table(title="Host CPU to take an output dir of N empty files (limit 1,000)")
        for column in ("files written", "copy out (s)", "collect (s)"):
            table.add_column(column, justify="right")
        for files in (1_000, 10_000, 100_000):
            copy, collect = median_cpu(staged, files, root)
            table.add_row(f"{files:,}", f"{copy:.3f}", f"{collect:.4f}")
        console.print(table)
    finally:
        unmount(root)
        root.rmdir()


if __name__ == "__main__":
    main()
