"""The sandbox's own numbers: a raw bwrap spawn loop (the floor) and the runtime's overhead.

"Raw bwrap" is the very bubblewrap command line the process runtime builds for the no-op task
(same binds, same namespaces, /bin/true), spawned directly: no cgroup, no tmpfs stage, no
setpriv drop, no Python bookkeeping. The runtime does all of that, and the difference is its cost.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import structlog

from bench.client import BenchError
from saassy.runtime import bwrap
from saassy.runtime.base import Limits, SandboxSpec
from saassy.runtime.process import ProcessRuntime

NOOP_LIMITS = Limits(memory_mb=128, cpus=0.5, pids=32, disk_mb=16, timeout_s=30)


@dataclass(frozen=True)
class SandboxKit:
    """Files for the no-op sandbox, the runtime, and the raw bwrap argv of the same sandbox."""

    root: Path
    runtime: ProcessRuntime
    raw_argv: list[str]

    def spec(self, name: str) -> SandboxSpec:
        return SandboxSpec(
            name=name,
            argv=("/bin/true",),
            input_file=self.root / "input.json",
            output_dir=self.root / "output",
            events_file=self.root / "events.jsonl",
            limits=NOOP_LIMITS,
        )


def sandbox_kit() -> SandboxKit:
    runtime = ProcessRuntime()
    if runtime.host is None:
        raise BenchError(f"the process runtime cannot isolate here: {', '.join(runtime.missing)}")
    root = Path(tempfile.mkdtemp(prefix="saassy-bench-sandbox-"))
    root.chmod(0o755)  # bwrap runs as the sandbox uid in the runtime; keep raw runs alike
    (root / "input.json").write_text("{}")
    (root / "output").mkdir()
    (root / "events.jsonl").touch()
    argv = bwrap.bwrap_argv(
        runtime.host.bwrap,
        ("/bin/true",),
        etc=bwrap.write_etc(root, uid=runtime.host.uid, gid=runtime.host.gid),
        input_file=root / "input.json",
        output_dir=root / "output",
        events_file=root / "events.jsonl",
        tmp_bytes=NOOP_LIMITS.disk_mb * 1024 * 1024,
    )
    return SandboxKit(root, runtime, argv)


async def raw_once(kit: SandboxKit) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *kit.raw_argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise BenchError(f"raw bwrap failed: {stderr.decode(errors='replace')}")
    return time.perf_counter() - started


async def runtime_once(kit: SandboxKit, name: str) -> float:
    """Start, wait and clean up one no-op sandbox: what the engine pays per attempt."""
    started = time.perf_counter()
    handle = await kit.runtime.start(kit.spec(name))
    try:
        exit_ = await handle.wait()
    finally:
        await handle.cleanup()
    if not exit_.succeeded:
        raise BenchError(f"the runtime's no-op sandbox ended {exit_}")
    return time.perf_counter() - started


async def _overhead(kit: SandboxKit, samples: int) -> dict[str, float]:
    raw: list[float] = []
    runtime: list[float] = []
    for i in range(samples):  # interleaved, so drift on the host hits both alike
        raw.append(await raw_once(kit))
        runtime.append(await runtime_once(kit, f"bench-overhead-{i}"))
    raw_ms = statistics.median(raw) * 1000
    runtime_ms = statistics.median(runtime) * 1000
    return {
        "raw_bwrap_ms": raw_ms,
        "runtime_start_ms": runtime_ms,
        "runtime_overhead_ms": runtime_ms - raw_ms,
    }


async def _loop(kit: SandboxKit, count: int, parallelism: int, *, raw: bool) -> float:
    """Sandboxes per second with `parallelism` in flight, `count` in all."""
    slots = asyncio.Semaphore(parallelism)

    async def one(i: int) -> None:
        async with slots:
            await (raw_once(kit) if raw else runtime_once(kit, f"bench-loop-{i}"))

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - started)


def run_sandbox_numbers(count: int, parallelism: int, samples: int) -> dict[str, float]:
    """Floor throughput, the runtime's own loop throughput, and its per-sandbox overhead."""
    # The runtime logs every sandbox's end at INFO; the engine's server does too, but this loop
    # is the floor: keep the terminal quiet and the loop free of log formatting.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    kit = sandbox_kit()
    try:
        return asyncio.run(_sandbox_numbers(kit, count, parallelism, samples))
    finally:
        shutil.rmtree(kit.root, ignore_errors=True)


async def _sandbox_numbers(
    kit: SandboxKit, count: int, parallelism: int, samples: int
) -> dict[str, float]:
    await _loop(kit, min(count, 4 * parallelism), parallelism, raw=True)  # warm caches
    numbers = await _overhead(kit, samples)
    numbers["floor_throughput_tasks_per_s"] = await _loop(kit, count, parallelism, raw=True)
    numbers["runtime_loop_throughput_tasks_per_s"] = await _loop(kit, count, parallelism, raw=False)
    return numbers
