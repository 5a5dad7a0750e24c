"""The process runtime's own cost: CPU per no-op sandbox against raw bwrap, in interleaved blocks.

Each block runs `--block` no-op sandboxes one after another, either as raw bwrap (the command line
the runtime builds, spawned directly: bench/sandbox_runs.py's floor) or through
`ProcessRuntime.start/wait/cleanup`; blocks alternate, so load from elsewhere on a shared machine
falls on both alike. Per sandbox it reports the whole machine's CPU (/proc/stat: every non-idle
tick, the kernel's work for namespaces, mounts and cgroups included, but also whatever else runs),
the tree's CPU (everything this process and what it starts use, counted by the kernel in a cgroup
of the run's own and, once a sandbox has moved into its own cgroup, there: steady under other
load, but blind to the kernel's deferred work in its own threads, ~3% of the machine's here),
this process's CPU alone and wall time, as medians over the blocks with their min and max.

    .venv/bin/python -m bench.runtime_cost [--blocks 20] [--block 20] [--parallel 1]
        [--before CHANGE]

`--before CHANGE` adds a third kind of block, the runtime with one change undone (`BEFORE`), and
reports the pairwise difference: what that change is worth, measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import shutil
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from unittest import mock

import structlog

from bench.client import BenchError
from bench.sandbox_runs import SandboxKit, raw_once, sandbox_kit
from saassy.runtime import sandbox
from saassy.runtime.base import Limits
from saassy.runtime.cgroups import SandboxCgroup, detect_cgroups

TICKS = os.sysconf("SC_CLK_TCK")


def machine_cpu_s() -> float:
    """CPU seconds every core spent not idle (nor waiting on I/O) since boot."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]
    guest = sum(fields[8:])  # guest time is counted in user time already
    return (sum(fields) - idle - guest) / TICKS


def bench_cgroup() -> SandboxCgroup:
    """A cgroup of this process's own, which it joins with all its threads: every process it
    starts stays in it, and is counted there, until a sandbox moves into one of its own. It is
    left in place (empty once the run ends) and reused by the next run."""
    layout = detect_cgroups("saassy-bench")
    if layout is None:
        raise BenchError("no writable cgroups: the tree's CPU cannot be counted")
    cgroup = layout.create("cost", Limits(memory_mb=1 << 20, cpus=64, pids=10_000))
    for directory in cgroup.dirs.values():
        (directory / "cgroup.procs").write_text("0")
    return cgroup


def own_cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


async def _block(one: Callable[[int], Awaitable[object]], size: int, parallel: int) -> None:
    slots = asyncio.Semaphore(parallel)

    async def run(i: int) -> None:
        async with slots:
            await one(i)

    await asyncio.gather(*(run(i) for i in range(size)))


class Counted:
    """CPU of everything the run started: its own cgroup's, plus what the runtime measured in
    each sandbox's cgroup (a sandbox leaves the run's cgroup for its own before it runs)."""

    def __init__(self, cgroup: SandboxCgroup) -> None:
        self.cgroup = cgroup
        self.sandboxes_s = 0.0

    def seconds(self) -> float:
        return self.cgroup.cpu_seconds() + self.sandboxes_s


async def runtime_counted(kit: SandboxKit, name: str, counted: Counted) -> None:
    """Start, wait and clean up one no-op sandbox (bench.sandbox_runs.runtime_once), adding up
    what its cgroup used."""
    handle = await kit.runtime.start(kit.spec(name))
    try:
        exit_ = await handle.wait()
        counted.sandboxes_s += (await handle.usage()).cpu_seconds
    finally:
        await handle.cleanup()
    if not exit_.succeeded:
        raise BenchError(f"the runtime's no-op sandbox ended {exit_}")


@contextlib.contextmanager
def locale_in_launch_chain() -> Iterator[None]:
    """Before: the locale variables went through sh, setpriv and bwrap (each loaded its files)."""
    with mock.patch.object(sandbox, "LOCALE_VARIABLE", re.compile("(?!)")):
        yield


# Each change's previous behaviour, restored for the `runtime_before` blocks (--before NAME).
BEFORE: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "locale": locale_in_launch_chain,
}


async def measure(
    kit: SandboxKit, blocks: int, size: int, parallel: int, before: str | None = None
) -> dict[str, list[float]]:
    counter = iter(range(1 << 30))
    counted = Counted(bench_cgroup())

    def runtime(_: int) -> Awaitable[None]:
        return runtime_counted(kit, f"bench-cost-{next(counter)}", counted)

    variants: dict[str, tuple[Callable[[int], Awaitable[object]], Callable[[], Any]]] = {
        "raw": (lambda _: raw_once(kit), contextlib.nullcontext),
        "runtime": (runtime, contextlib.nullcontext),
    }
    if before is not None:
        variants["runtime_before"] = (runtime, BEFORE[before])
    series: dict[str, list[float]] = {}
    for one, patched in variants.values():  # warm caches
        with patched():
            await _block(one, size, parallel)
    for b in range(blocks):
        order = list(variants.items())
        if b % 2:
            order.reverse()
        for name, (one, patched) in order:
            machine, own, wall = machine_cpu_s(), own_cpu_s(), time.perf_counter()
            tree = counted.seconds()
            with patched():
                await _block(one, size, parallel)
            per = 1000 / size
            series.setdefault(f"{name}_tree_cpu_ms", []).append((counted.seconds() - tree) * per)
            series.setdefault(f"{name}_machine_cpu_ms", []).append(
                (machine_cpu_s() - machine) * per
            )
            series.setdefault(f"{name}_own_cpu_ms", []).append((own_cpu_s() - own) * per)
            series.setdefault(f"{name}_wall_ms", []).append((time.perf_counter() - wall) * per)
    return series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=20, help="blocks of each kind")
    parser.add_argument("--block", type=int, default=20, help="sandboxes per block")
    parser.add_argument("--parallel", type=int, default=1, help="sandboxes in flight")
    parser.add_argument("--bwrap", default=None, help="bwrap binary (default: the system's)")
    parser.add_argument(
        "--before", choices=sorted(BEFORE), help="also run the runtime as it was before a change"
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    kit = sandbox_kit(args.bwrap or shutil.which("bwrap"))
    try:
        series = asyncio.run(measure(kit, args.blocks, args.block, args.parallel, args.before))
    finally:
        shutil.rmtree(kit.root, ignore_errors=True)
    print(f"{args.blocks} blocks of {args.block} per kind, {args.parallel} in flight; per sandbox:")
    for key, values in series.items():
        print(
            f"  {key:26} median {statistics.median(values):7.2f}  "
            f"(min {min(values):6.2f}, max {max(values):6.2f})"
        )
    pairs = [("runtime", "raw")]
    if args.before:
        pairs.append(("runtime_before", "runtime"))
    for a, b in pairs:
        for kind in ("tree_cpu", "own_cpu", "machine_cpu", "wall"):
            pair = zip(series[f"{a}_{kind}_ms"], series[f"{b}_{kind}_ms"], strict=True)
            gap = sorted(x - y for x, y in pair)
            print(
                f"  {a} - {b}, {kind:11} median {statistics.median(gap):+7.2f} ms per sandbox "
                f"(min {gap[0]:+.2f}, max {gap[-1]:+.2f})"
            )


if __name__ == "__main__":
    main()
