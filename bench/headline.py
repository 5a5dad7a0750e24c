"""The headline numbers, in repetitions: every compared path runs the echo program, side by side.

Each repetition runs, in an order rotated from one repetition to the next (drift on a shared
machine then hits every path alike): the raw bwrap loop (the floor), the runtime's loop without
the engine, Saassy through its API, Celery + Redis with a plain bwrap sandbox (the peer a user
would pick instead) and Celery + Redis around Saassy's own runtime (the engines alone); then
submit->running solo and beside a flooding tenant, and the sandbox's own start. One server, one
database and one worker of each Celery kind serve every repetition. Ratios are taken within a
repetition; the results hold each number's median over the repetitions and its min and max.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path

from bench.celery_run import PLAIN_BWRAP, SAME_RUNTIME, CeleryWorker
from bench.engine_runs import (
    EngineSizes,
    Profiler,
    latency_and_noisy,
    percentile,
    saassy_throughput,
)
from bench.sandbox_runs import (
    SandboxKit,
    echo_loops,
    floor_bwrap,
    quiet_runtime_logs,
    sandbox_kit,
    start_to_program,
)
from bench.server import ServerProcess
from bench.stage import scratch_stage


@dataclass(frozen=True)
class HeadlineSizes:
    engine: EngineSizes
    repetitions: int = 3
    parallelism: int = 8


def summarize(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each key's median over the repetitions, with `_min` and `_max` beside it."""
    out: dict[str, float] = {"repetitions": float(len(runs))}
    for key in runs[0]:
        values = [run[key] for run in runs]
        out[key] = statistics.median(values)
        out[f"{key}_min"], out[f"{key}_max"] = min(values), max(values)
    return out


def ratios(run: dict[str, float]) -> dict[str, float]:
    """The budgets are ratios, taken within one repetition; and how busy each drain kept the
    machine (its CPU per task times tasks per second, over the CPUs: below 1, cores sat idle)."""
    ours = run["throughput_tasks_per_s"]
    start = run["sandbox_start_to_program_p50_ms"]
    cpus = os.cpu_count() or 1  # /proc/stat's busy time is every online CPU's
    return {
        "machine_busy_share": ours * run["machine_cpu_ms_per_task"] / 1000 / cpus,
        "celery_machine_busy_share": run["celery_throughput_tasks_per_s"]
        * run["celery_machine_cpu_ms_per_task"]
        / 1000
        / cpus,
        "throughput_vs_celery": ours / run["celery_throughput_tasks_per_s"],
        "throughput_vs_celery_same_runtime": ours
        / run["celery_same_runtime_throughput_tasks_per_s"],
        "throughput_vs_floor": ours / run["floor_throughput_tasks_per_s"],
        "throughput_vs_runtime_loop": ours / run["runtime_loop_throughput_tasks_per_s"],
        "submit_to_running_above_sandbox_p50_ms": run["submit_to_running_p50_ms"] - start,
        "submit_to_running_above_sandbox_p99_ms": run["submit_to_running_p99_ms"] - start,
        "celery_submit_to_running_above_sandbox_p50_ms": run["celery_submit_to_running_p50_ms"]
        - start,
        "celery_submit_to_running_above_sandbox_p99_ms": run["celery_submit_to_running_p99_ms"]
        - start,
    }


def run_headline(
    sizes: HeadlineSizes,
    database_url: str | None,
    redis_url: str,
    logs: Path,
    profiler: Profiler | None = None,
    progress: Callable[[str], None] = print,
) -> dict[str, float]:
    quiet_runtime_logs()
    system, _ = floor_bwrap()
    kit = sandbox_kit(system)
    parallelism = sizes.parallelism
    with ExitStack() as stack:
        stack.callback(_remove, kit)
        peer = stack.enter_context(
            CeleryWorker(PLAIN_BWRAP, parallelism, redis_url, logs / "celery-bwrap.log", system)
        )
        same = stack.enter_context(
            CeleryWorker(SAME_RUNTIME, parallelism, redis_url, logs / "celery-runtime.log")
        )
        stage = stack.enter_context(scratch_stage(parallelism, database_url, "headline"))
        server = stack.enter_context(
            ServerProcess(stage.server_env(), logs / "server-headline.log")
        )
        engine = sizes.engine
        for worker in (peer, same):  # booted meanwhile
            worker.warm()
        # Warm the loops' caches.
        asyncio.run(echo_loops(kit, min(engine.tasks, 4 * parallelism), parallelism))

        def saassy(rep: int) -> dict[str, float]:
            profiling: AbstractContextManager[object] = nullcontext()
            if profiler is not None and rep == 0:
                profiling = profiler(server.pid)
            return asyncio.run(saassy_throughput(server, stage, engine, profiling))

        def celery(worker: CeleryWorker, prefix: str) -> dict[str, float]:
            measured = worker.throughput(engine.tasks)
            return {
                f"{prefix}_throughput_tasks_per_s": measured["tasks_per_s"],
                f"{prefix}_machine_cpu_ms_per_task": measured["machine_cpu_ms"],
            }

        paths: list[Callable[[int], dict[str, float]]] = [
            lambda _: asyncio.run(echo_loops(kit, engine.tasks, parallelism)),
            saassy,
            lambda _: celery(peer, "celery"),
            lambda _: celery(same, "celery_same_runtime"),
        ]
        runs = []
        for rep in range(sizes.repetitions):
            progress(f"repetition {rep + 1} of {sizes.repetitions}")
            run: dict[str, float] = {}
            for i in range(len(paths)):
                run |= paths[(i + rep) % len(paths)](rep)
            run |= asyncio.run(_sandbox_start(kit, max(5, engine.latency_samples // 4)))
            run |= _peer_submit_to_running(peer, engine.latency_samples)
            run |= asyncio.run(latency_and_noisy(server, stage, engine, kit))
            runs.append(run | ratios(run))
    return summarize(runs)


async def _sandbox_start(kit: SandboxKit, samples: int) -> dict[str, float]:
    """Asking for an echo sandbox -> its program's first instruction, raw bwrap and runtime,
    interleaved, one at a time."""
    raw, runtime = [], []
    for _ in range(samples):
        raw.append(await start_to_program(kit, raw=True) * 1000)
        runtime.append(await start_to_program(kit, raw=False) * 1000)
    return {
        "sandbox_start_to_program_p50_ms": percentile(raw, 50),
        "runtime_start_to_program_p50_ms": percentile(runtime, 50),
    }


def _peer_submit_to_running(peer: CeleryWorker, samples: int) -> dict[str, float]:
    """The peer's submit->running, one task at a time on its idle worker: from `send_task` to
    the program's first instruction (its own sandbox's start included, as Saassy's is)."""
    waits = [wait * 1000 for wait in peer.submit_to_running(samples)]
    return {
        "celery_submit_to_running_p50_ms": percentile(waits, 50),
        "celery_submit_to_running_p99_ms": percentile(waits, 99),
    }


def _remove(kit: SandboxKit) -> None:
    shutil.rmtree(kit.root, ignore_errors=True)
