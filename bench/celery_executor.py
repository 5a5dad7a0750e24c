"""The Celery executor (docs/scale-out.md) for real: `saassy scheduler` and N `saassy worker`
processes on PostgreSQL + Redis, tasks submitted through the API, for N = 1, 2 and 4 workers.

`python -m bench.celery_executor [--quick] [--workers 1,2,4] [--concurrency 4] [--postgres-url]`

The bench makes a database of its own on the PostgreSQL server and drops it afterwards; the
broker is `--redis-url` (a queue of its own, deleted afterwards). The API (`python -m
bench.server`, engine off as with any `SAASSY_EXECUTOR=celery` process) stays up for the whole
curve; each N gets a fresh scheduler (its capacity is N x `--concurrency`) and N workers, warmed
with a batch first. Run alone, it measures Celery + Redis with a plain bwrap sandbox
(bench/celery_run) in the same run, with the concurrency of two workers. Every task is the echo
program (bench/echo.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path

from kombu import Connection  # type: ignore[import-untyped]
from rich.console import Console

from bench.celery_run import run_celery
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
from bench.engine_runs import percentile
from bench.pg_scratch import add_postgres_option, scratch_database
from bench.report import Row, print_rows, write_results
from bench.server import ServerProcess
from bench.stage import BENCH_CATALOG

RESULTS = Path(__file__).parent / "results"
TITLE = "Celery executor: PostgreSQL + Redis, scheduler + N workers, through the API"
WORKER_READY_S = 60.0


@dataclass(frozen=True)
class ScaleSizes:
    # make bench runs under 15 minutes on 2 cores: 200 echo tasks per point; each latency
    # sample waits a random part of the scheduler's poll first (~0.35 s a sample).
    tasks: int = 200
    latency_samples: int = 25
    workers: tuple[int, ...] = (1, 2, 4)
    concurrency: int = 4  # per worker: two workers have the Celery baseline's 8
    submitters: int = 16
    poll_s: float = 0.5  # the scheduler's default SAASSY_DISPATCH_POLL_S


QUICK = ScaleSizes(tasks=100, latency_samples=15)


def rows(sizes: ScaleSizes) -> list[Row]:
    out = [
        Row("celery_executor_throughput_tasks_per_s", "Celery executor, 2 workers", "tasks/s"),
        Row("celery_throughput_tasks_per_s", "Celery + Redis, plain bwrap", "tasks/s"),
        Row("celery_executor_vs_celery", "Celery executor (2 workers) / Celery", "x"),
    ]
    for n in sizes.workers:
        out += [
            Row(
                f"celery_executor_{n}w_throughput_tasks_per_s",
                f"{n} worker(s): throughput",
                "tasks/s",
            ),
            Row(f"celery_executor_{n}w_submit_to_running_p50_ms", "... 202 -> running, p50", "ms"),
            Row(f"celery_executor_{n}w_submit_to_running_p99_ms", "... 202 -> running, p99", "ms"),
        ]
    return out


def cluster_env(
    database_url: str, redis_url: str, queue: str, root: Path, sizes: ScaleSizes
) -> dict[str, str]:
    """What every process of the cluster shares (API, scheduler, workers), as a deployment would."""
    (root / "saassy.toml").write_text(BENCH_CATALOG)
    return {
        "SAASSY_ENV": "development",
        "SAASSY_CONFIG": str(root / "saassy.toml"),
        "SAASSY_DATA_DIR": str(root / "data"),  # one host: the workers share the work root
        "SAASSY_DATABASE_URL": database_url,
        "SAASSY_SECRET_KEY": secrets.token_urlsafe(48),
        "SAASSY_VAULT_KEYS": b64encode(secrets.token_bytes(32)).decode(),
        "SAASSY_EXECUTOR": "celery",
        "SAASSY_BROKER_URL": redis_url,
        # As in production: live events (and the scheduler's wake-ups) and rate limits on Redis.
        "SAASSY_REDIS_URL": redis_url,
        "SAASSY_BROKER_QUEUE": queue,
        "SAASSY_DISPATCH_POLL_S": str(sizes.poll_s),
        "SAASSY_DATABASE_POOL_SIZE": "8",
    }


class Cluster:
    """A scheduler and workers as `python -m saassy.cli` processes; stopped with SIGTERM."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SAASSY_")}
        self.env = {**clean, **env, "PYTHONUNBUFFERED": "1"}
        self.logs = logs
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, *args: str) -> None:
        log_path = self.logs / f"celery-executor-{args[0]}-{len(self.processes)}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "saassy.cli", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes.append((str(log_path), process))

    def check_alive(self) -> None:
        for log_path, process in self.processes:
            if process.poll() is not None:
                raise BenchError(f"a cluster process exited ({process.returncode}); see {log_path}")

    def stop(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for _, process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def run_celery_executor(
    sizes: ScaleSizes, postgres_url: str, redis_url: str, root: Path, logs: Path
) -> dict[str, float]:
    """The curve: throughput and 202 -> running for each number of workers."""
    queue = f"saassy-bench-{uuid.uuid4().hex[:10]}"
    numbers: dict[str, float] = {
        "celery_executor_worker_concurrency": float(sizes.concurrency),
        "celery_executor_poll_s": sizes.poll_s,
        "cpu_count": float(os.cpu_count() or 0),
    }
    with scratch_database(postgres_url, "scale") as database_url:
        env = cluster_env(database_url, redis_url, queue, root, sizes)
        try:
            with ServerProcess(env, logs / "server-celery-executor.log") as server:
                for workers in sizes.workers:
                    cluster = Cluster(
                        env | {"SAASSY_EXECUTOR_PARALLELISM": str(workers * sizes.concurrency)},
                        logs,
                    )
                    try:
                        cluster.start("scheduler")
                        for _ in range(workers):
                            cluster.start("worker", "--concurrency", str(sizes.concurrency))
                        point = asyncio.run(
                            _measure(server.url, database_url, cluster, workers, sizes)
                        )
                    finally:
                        cluster.stop()
                    numbers |= {
                        f"celery_executor_{workers}w_{key}": value for key, value in point.items()
                    }
        finally:
            with Connection(redis_url) as connection:
                connection.default_channel.queue_delete(queue)
    if 2 in sizes.workers:
        numbers["celery_executor_throughput_tasks_per_s"] = numbers[
            "celery_executor_2w_throughput_tasks_per_s"
        ]
    return numbers


async def _measure(
    url: str, database_url: str, cluster: Cluster, workers: int, sizes: ScaleSizes
) -> dict[str, float]:
    auditor = Auditor(database_url)
    try:
        async with http_client(url, sizes.submitters) as client:
            warm = await sign_up(client)  # until every worker runs sandboxes
            slots = workers * sizes.concurrency
            await submit_many(client, warm, 2 * slots, sizes.submitters)
            await _until_terminal(auditor, cluster, warm, 2 * slots, WORKER_READY_S)

            tenant = await sign_up(client)
            started = time.perf_counter()
            await submit_many(client, tenant, sizes.tasks, sizes.submitters)
            ended = await _until_terminal(
                auditor, cluster, tenant, sizes.tasks, 60 + sizes.tasks / 2
            )
            await auditor.require_succeeded(tenant.organization_id, sizes.tasks)

            quiet = await sign_up(client)
            samples: list[Submitted] = []
            for _ in range(sizes.latency_samples):  # one at a time, the next once the last ended
                # ... after a random pause: samples in step with the scheduler's poll would
                # all wait the same part of it.
                await asyncio.sleep(random.uniform(0, sizes.poll_s))  # noqa: S311 - not secret
                samples.append(await submit(client, quiet))
                await auditor.wait_task(samples[-1].task_id, timeout_s=60)
            cluster.check_alive()
            times = await auditor.program_started([s.task_id for s in samples])
    finally:
        await auditor.close()
    if len(times) != len(samples):
        raise BenchError(f"{len(samples) - len(times)} tasks left no result")
    # "Running" is the echo program's first instruction: it reads the host's clocks first thing.
    accepted = [(times[s.task_id].monotonic - s.accepted_monotonic) * 1000 for s in samples]
    created = [(times[s.task_id].realtime - times[s.task_id].created_at) * 1000 for s in samples]
    return {
        "throughput_tasks_per_s": sizes.tasks / (ended - started),
        "submit_to_running_p50_ms": percentile(accepted, 50),
        "submit_to_running_p99_ms": percentile(accepted, 99),
        "created_to_running_p50_ms": percentile(created, 50),
        "created_to_running_p99_ms": percentile(created, 99),
    }


async def _until_terminal(
    auditor: Auditor, cluster: Cluster, tenant: Tenant, count: int, timeout_s: float
) -> float:
    deadline = time.monotonic() + timeout_s
    while True:
        cluster.check_alive()
        try:
            return await auditor.wait_terminal(tenant.organization_id, count, timeout_s=1.0)
        except BenchError:
            if time.monotonic() > deadline:
                raise BenchError(f"{count} tasks were not terminal within {timeout_s} s") from None


def celery_executor_ratios(numbers: dict[str, float]) -> dict[str, float]:
    if (
        "celery_executor_throughput_tasks_per_s" in numbers
        and "celery_throughput_tasks_per_s" in numbers
    ):
        return numbers | {
            "celery_executor_vs_celery": numbers["celery_executor_throughput_tasks_per_s"]
            / numbers["celery_throughput_tasks_per_s"]
        }
    return numbers


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.celery_executor", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tasks", type=int)
    parser.add_argument("--latency-samples", type=int)
    parser.add_argument("--workers", default="1,2,4", help="Comma-separated worker counts.")
    parser.add_argument("--concurrency", type=int, default=4, help="Each worker's --concurrency.")
    add_postgres_option(parser)
    parser.add_argument(
        "--redis-url", default=os.environ.get("SAASSY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "celery-executor.json")
    args = parser.parse_args()
    base = QUICK if args.quick else ScaleSizes()
    sizes = ScaleSizes(
        tasks=args.tasks or base.tasks,
        latency_samples=args.latency_samples or base.latency_samples,
        workers=tuple(int(n) for n in args.workers.split(",")),
        concurrency=args.concurrency,
    )
    logs = args.out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    console = Console()
    console.print(
        f"[bold]Celery + Redis[/]: {sizes.tasks} no-op tasks, concurrency {2 * sizes.concurrency}"
    )
    numbers = run_celery(sizes.tasks, 2 * sizes.concurrency, args.redis_url, logs)
    console.print(f"[bold]{TITLE}[/]: workers {', '.join(map(str, sizes.workers))}")

    with tempfile.TemporaryDirectory(prefix="saassy-bench-scale-") as root:
        numbers |= run_celery_executor(sizes, args.postgres_url, args.redis_url, Path(root), logs)
    numbers = celery_executor_ratios(numbers)
    print_rows(TITLE, rows(sizes), numbers, console)
    write_results(numbers, args.out)
    console.print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
