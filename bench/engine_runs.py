"""The engine's numbers: durable throughput through the API, submit->running, noisy neighbour.

"Running" is the moment the task's program began: the echo program (bench/echo.py) reads the
host's clocks first thing (a sandbox has no time namespace) and writes them into its result.json,
which the task's row keeps. Nothing is clamped: a figure is what the clocks say.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

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
from bench.machine import MachineCpu
from bench.sandbox_runs import SandboxKit, start_to_program
from bench.server import ServerProcess
from bench.stage import Stage
from saassy.models import TaskStatus

HOLD = {"type": "hold", "input": {}}  # runs until canceled (bench/stage.py)
# Profiler factory: given the server's pid, a context manager that records while it is open.
Profiler = Callable[[int], AbstractContextManager[object]]


@dataclass(frozen=True)
class EngineSizes:
    tasks: int = 250  # per path and repetition
    submitters: int = 16
    latency_samples: int = 150  # per repetition, solo and flooded each
    noisy_queued: int = 10_000


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


async def saassy_throughput(
    server: ServerProcess,
    stage: Stage,
    sizes: EngineSizes,
    profiling: AbstractContextManager[object] | None = None,
) -> dict[str, float]:
    """`sizes.tasks` echo tasks from `sizes.submitters` clients, first POST to last terminal."""
    auditor = Auditor(stage.database_url)
    try:
        async with http_client(server.url, sizes.submitters) as client:
            tenant = await sign_up(client)
            with profiling or nullcontext(), MachineCpu() as machine:
                cpu_before = server.cpu_seconds()
                client_before = time.process_time()
                started = time.perf_counter()
                await submit_many(client, tenant, sizes.tasks, sizes.submitters)
                submitted = time.perf_counter()
                ended = await auditor.wait_terminal(
                    tenant.organization_id, sizes.tasks, timeout_s=60 + sizes.tasks / 5
                )
                cpu_used = server.cpu_seconds() - cpu_before
                client_used = time.process_time() - client_before
            await auditor.require_succeeded(tenant.organization_id, sizes.tasks)
    finally:
        await auditor.close()
    return {
        "throughput_tasks_per_s": sizes.tasks / (ended - started),
        "submit_rate_tasks_per_s": sizes.tasks / (submitted - started),
        "server_cpu_ms_per_task": cpu_used * 1000 / sizes.tasks,
        "machine_cpu_ms_per_task": machine.ms_per(sizes.tasks),
        # This process: the submitting clients and the auditor's polls (part of the machine's).
        "client_cpu_ms_per_task": client_used * 1000 / sizes.tasks,
    }


async def submit_to_running(
    server: ServerProcess, stage: Stage, sizes: EngineSizes
) -> dict[str, float]:
    """Solo submit->running on an idle engine (one repetition)."""
    auditor = Auditor(stage.database_url)
    try:
        async with http_client(server.url) as client:
            quiet = await sign_up(client)
            await _warm(auditor, client, quiet)
            solo = await _waits(auditor, client, quiet, sizes)
    finally:
        await auditor.close()
    return _solo_numbers(solo)


async def latency_and_noisy(
    server: ServerProcess, stage: Stage, sizes: EngineSizes, kit: SandboxKit | None = None
) -> dict[str, float]:
    """Solo submit->running, then the same while another tenant floods the queue: first with
    nothing else of the quiet tenant's running (its task may take the reserved slot), then with
    a task of its own running (it may not: it waits for a slot the flood leaves). The flood's
    leftovers are deleted afterwards, so the next repetition starts on an idle engine. With a
    `kit`, raw bwrap starts of the same program solo and beside the same flood too: the floor of
    any start on a machine that busy, and of the flooded/solo ratio."""
    auditor = Auditor(stage.database_url)
    try:
        async with http_client(server.url) as client:
            quiet = await sign_up(client)
            await _warm(auditor, client, quiet)
            solo = await _waits(auditor, client, quiet, sizes)
            raw_solo_ms = await _raw_starts(kit, sizes.latency_samples) if kit is not None else []

            noisy = await sign_up(client)
            await auditor.flood(noisy.organization_id, sizes.noisy_queued)
            await submit_many(client, noisy, 1, 1)  # wakes the dispatcher (it also polls)
            await _until_busy(auditor, noisy.organization_id, stage.parallelism)
            flooded = await _waits(auditor, client, quiet, sizes)
            raw_ms = await _raw_starts(kit, sizes.latency_samples) if kit is not None else []
            [hold] = await submit_many(client, quiet, 1, 1, HOLD)
            await _until_busy(auditor, quiet.organization_id, 1)
            if not await auditor.count(quiet.organization_id, [TaskStatus.running]):
                raise BenchError("the quiet tenant's hold task did not start")
            busy = await _waits(auditor, client, quiet, sizes)
            still_queued = await auditor.count(noisy.organization_id, [TaskStatus.queued])
            await cancel(client, quiet, hold.task_id)
            await auditor.drop_queued(noisy.organization_id)
    finally:
        await auditor.close()
    if still_queued == 0:
        raise BenchError("the noisy tenant's queue drained before the measurement ended")
    flooded_ms = [w.accepted_to_program_ms for w in flooded]
    flooded_created_ms = [w.created_to_program_ms for w in flooded]
    busy_ms = [w.accepted_to_program_ms for w in busy]
    numbers = _solo_numbers(solo)
    solo_p99 = numbers["submit_to_running_p99_ms"]
    return (
        numbers
        | {
            "noisy_neighbour_submit_to_running_p99_ms": percentile(flooded_ms, 99),
            "noisy_neighbour_created_to_running_p99_ms": percentile(flooded_created_ms, 99),
            # Whole waits, the 202 to the program's first instruction, flooded over solo.
            "noisy_neighbour_p99_ratio": percentile(flooded_ms, 99) / solo_p99,
            "noisy_neighbour_busy_submit_to_running_p99_ms": percentile(busy_ms, 99),
            "noisy_neighbour_busy_p99_ratio": percentile(busy_ms, 99) / solo_p99,
            "noisy_neighbour_queued_left": float(still_queued),
        }
        | _beside_raw(percentile(flooded_ms, 99), raw_ms, raw_solo_ms)
    )


async def _raw_starts(kit: SandboxKit, samples: int) -> list[float]:
    return [await start_to_program(kit, raw=True) * 1000 for _ in range(samples)]


def _beside_raw(
    flooded_p99_ms: float, raw_ms: list[float], raw_solo_ms: list[float]
) -> dict[str, float]:
    """The flooded p99 against a raw bwrap start's beside the same flood, and what the flood
    does to raw starts: the floor of the flooded/solo ratio on this machine (when measured)."""
    if not raw_ms:
        return {}
    raw_p99, raw_solo_p99 = percentile(raw_ms, 99), percentile(raw_solo_ms, 99)
    return {
        "noisy_raw_start_p50_ms": percentile(raw_ms, 50),
        "noisy_raw_start_p99_ms": raw_p99,
        "noisy_neighbour_vs_raw_start_p99": flooded_p99_ms / raw_p99,
        "noisy_raw_solo_start_p99_ms": raw_solo_p99,
        "noisy_floor_p99_ratio": raw_p99 / raw_solo_p99,
    }


async def cancel(client: httpx.AsyncClient, tenant: Tenant, task_id: uuid.UUID) -> None:
    response = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=tenant.headers)
    if response.status_code not in (200, 202):
        raise BenchError(f"cancel answered {response.status_code}: {response.text}")


def _solo_numbers(solo: list[Wait]) -> dict[str, float]:
    accepted = [w.accepted_to_program_ms for w in solo]
    created = [w.created_to_program_ms for w in solo]
    return {
        "submit_to_running_p50_ms": percentile(accepted, 50),
        "submit_to_running_p99_ms": percentile(accepted, 99),
        "submit_to_running_min_sample_ms": min(accepted),
        "created_to_running_p50_ms": percentile(created, 50),
        "created_to_running_p99_ms": percentile(created, 99),
        "created_to_running_min_sample_ms": min(created),
    }


@dataclass(frozen=True)
class Wait:
    accepted_to_program_ms: float  # the client's 202 -> the program's first instruction
    created_to_program_ms: float  # the row's created_at -> the same


async def _warm(auditor: Auditor, client: httpx.AsyncClient, tenant: Tenant) -> None:
    """The server's code paths and connections, before any sample."""
    warm = await submit_many(client, tenant, 5, 1)
    for each in warm:
        await auditor.wait_task(each.task_id, timeout_s=60)


async def _waits(
    auditor: Auditor, client: httpx.AsyncClient, tenant: Tenant, sizes: EngineSizes
) -> list[Wait]:
    """One submission at a time (the next once the last ended): each one's 202 -> program."""
    submitted: list[Submitted] = []
    for _ in range(sizes.latency_samples):
        submitted.append(await submit(client, tenant))
        await auditor.wait_task(submitted[-1].task_id, timeout_s=60)
    started = await auditor.program_started([s.task_id for s in submitted])
    if len(started) != len(submitted):
        raise BenchError(f"{len(submitted) - len(started)} tasks left no result")
    return [
        Wait(
            (started[s.task_id].monotonic - s.accepted_monotonic) * 1000,
            (started[s.task_id].realtime - started[s.task_id].created_at) * 1000,
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
