"""The engine's numbers: durable throughput through the API, submit->running, noisy neighbour."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.client import (
    Auditor,
    BenchError,
    Submitted,
    Tenant,
    http_client,
    sign_up,
    submit,
    submit_many,
)
from bench.server import ServerProcess
from bench.stage import Stage
from saassy.models import TaskStatus

# Profiler factory: given the server's pid, a context manager that records while it is open.
Profiler = Callable[[int], AbstractContextManager[object]]


@dataclass(frozen=True)
class EngineSizes:
    tasks: int = 2000
    submitters: int = 16
    latency_samples: int = 200
    noisy_queued: int = 10_000


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def run_throughput(
    stage: Stage, sizes: EngineSizes, logs: Path, profiler: Profiler | None = None
) -> dict[str, float]:
    with ServerProcess(stage.server_env(), logs / "server-throughput.log") as server:
        profiling = profiler(server.pid) if profiler else nullcontext()
        return asyncio.run(_throughput(server, stage, sizes, profiling))


async def _throughput(
    server: ServerProcess,
    stage: Stage,
    sizes: EngineSizes,
    profiling: AbstractContextManager[object],
) -> dict[str, float]:
    auditor = Auditor(stage.database_url)
    try:
        async with http_client(server.url, sizes.submitters) as client:
            tenant = await sign_up(client)
            with profiling:
                cpu_before = server.cpu_seconds()
                started = time.perf_counter()
                await submit_many(client, tenant, sizes.tasks, sizes.submitters)
                submitted = time.perf_counter()
                ended = await auditor.wait_terminal(
                    tenant.organization_id, sizes.tasks, timeout_s=60 + sizes.tasks / 5
                )
                cpu_used = server.cpu_seconds() - cpu_before
            await auditor.require_succeeded(tenant.organization_id, sizes.tasks)
    finally:
        await auditor.close()
    return {
        "throughput_tasks_per_s": sizes.tasks / (ended - started),
        "submit_rate_tasks_per_s": sizes.tasks / (submitted - started),
        "server_cpu_ms_per_task": cpu_used * 1000 / sizes.tasks,
    }


def run_latency_and_noisy(stage: Stage, sizes: EngineSizes, logs: Path) -> dict[str, float]:
    """One server: solo submit->running, then the same while another tenant floods the queue."""
    with ServerProcess(stage.server_env(), logs / "server-latency.log") as server:
        return asyncio.run(_latency_and_noisy(server, stage, sizes))


async def _latency_and_noisy(
    server: ServerProcess, stage: Stage, sizes: EngineSizes
) -> dict[str, float]:
    auditor = Auditor(stage.database_url)
    try:
        async with http_client(server.url) as client:
            quiet = await sign_up(client)
            for _ in range(5):  # warm the server's code paths and connections
                await submit_many(client, quiet, 1, 1)
            await auditor.wait_terminal(quiet.organization_id, 5, timeout_s=30)
            solo = await _waits(auditor, client, quiet, sizes)

            noisy = await sign_up(client)
            await auditor.flood(noisy.organization_id, sizes.noisy_queued)
            await submit_many(client, noisy, 1, 1)  # wakes the dispatcher (it also polls)
            await _until_busy(auditor, noisy.organization_id, stage.parallelism)
            flooded = await _waits(auditor, client, quiet, sizes)
            still_queued = await auditor.count(noisy.organization_id, [TaskStatus.queued])
    finally:
        await auditor.close()
    if still_queued == 0:
        raise BenchError("the noisy tenant's queue drained before the measurement ended")
    # The claim often commits before the client has read its 202: a task already running then
    # waited 0 after it, not a negative time.
    solo_ms = [max(0.0, w.accepted_to_running_ms) for w in solo]
    flooded_ms = [max(0.0, w.accepted_to_running_ms) for w in flooded]
    # The noisy-neighbour ratio compares whole waits, from the row's insert to the claim: both
    # are real durations, and the 202-based ones are mostly 0, which no ratio can divide by.
    created_ms = [w.created_to_running_ms for w in solo]
    flooded_created_ms = [w.created_to_running_ms for w in flooded]
    return {
        "submit_to_running_p50_ms": percentile(solo_ms, 50),
        "submit_to_running_p99_ms": percentile(solo_ms, 99),
        "created_to_running_p50_ms": percentile(created_ms, 50),
        "created_to_running_p99_ms": percentile(created_ms, 99),
        "noisy_neighbour_submit_to_running_p99_ms": percentile(flooded_ms, 99),
        "noisy_neighbour_p99_ms": percentile(flooded_created_ms, 99),
        "noisy_neighbour_p99_ratio": percentile(flooded_created_ms, 99)
        / percentile(created_ms, 99),
        "noisy_neighbour_queued_left": float(still_queued),
    }


@dataclass(frozen=True)
class Wait:
    accepted_to_running_ms: float
    created_to_running_ms: float


async def _waits(
    auditor: Auditor, client: httpx.AsyncClient, tenant: Tenant, sizes: EngineSizes
) -> list[Wait]:
    """One submission at a time (the next once the last ended): each one's 202 -> running."""
    submitted: list[Submitted] = []
    for _ in range(sizes.latency_samples):
        submitted.append(await submit(client, tenant))
        await auditor.wait_task(submitted[-1].task_id, timeout_s=60)
    started = await auditor.started([s.task_id for s in submitted])
    if len(started) != len(submitted):
        raise BenchError(f"{len(submitted) - len(started)} tasks never started")
    return [
        Wait(
            (started[s.task_id][1] - s.accepted_at) * 1000,
            (started[s.task_id][1] - started[s.task_id][0]) * 1000,
        )
        for s in submitted
    ]


async def _until_busy(auditor: Auditor, organization_id: uuid.UUID, parallelism: int) -> None:
    """Until the flooding tenant fills the executor (or 10 s: then measure anyway)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        busy = await auditor.count(organization_id, [TaskStatus.dispatched, TaskStatus.running])
        if busy >= parallelism:
            return
        await asyncio.sleep(0.02)
