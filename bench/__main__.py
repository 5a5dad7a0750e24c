"""`python -m bench [--quick]`: every number side by side, on this machine, in one run."""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from functools import partial
from pathlib import Path

from rich.console import Console

from bench import profiling, submit_api
from bench.celery_executor import QUICK as QUICK_SCALE
from bench.celery_executor import TITLE as SCALE_TITLE
from bench.celery_executor import ScaleSizes, celery_executor_ratios, run_celery_executor
from bench.celery_executor import rows as scale_rows
from bench.claim_cost import ROWS as CLAIM_ROWS
from bench.claim_cost import TITLE as CLAIM_TITLE
from bench.claim_cost import run_claim_cost
from bench.docker_overhead import ROWS as DOCKER_ROWS
from bench.docker_overhead import TITLE as DOCKER_TITLE
from bench.docker_overhead import run_docker_overhead
from bench.egress import QUICK as QUICK_EGRESS
from bench.egress import ROWS as EGRESS_ROWS
from bench.egress import EgressSizes, run_egress_numbers
from bench.engine_runs import EngineSizes
from bench.headline import HeadlineSizes, run_headline
from bench.logs import QUICK as QUICK_LOGS
from bench.logs import ROWS as LOG_ROWS
from bench.logs import LogSizes, run_log_numbers
from bench.logs import title as log_title
from bench.meter_events import QUICK as QUICK_METER_EVENTS
from bench.meter_events import ROWS as METER_EVENT_ROWS
from bench.meter_events import TITLE as METER_EVENT_TITLE
from bench.meter_events import MeterSizes, run_meter_event_numbers
from bench.pg_scratch import add_postgres_option
from bench.report import print_rows, print_table, write_results
from bench.sandbox_runs import run_overhead_numbers
from bench.stage import add_database_option
from bench.task_list import ROWS as TASK_LIST_ROWS
from bench.task_list import TITLE as TASK_LIST_TITLE
from bench.task_list import run_task_list_numbers

RESULTS = Path(__file__).parent / "results"
# 8 in flight on this 2-core VM: the raw bwrap loop gains nothing past 4-8 (bench/README).
DEFAULT_PARALLELISM = 8


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Smaller counts (about 5 minutes).")
    parser.add_argument(
        "--repetitions", type=int, help="Repetitions of the headline numbers (3; at least 3)."
    )
    parser.add_argument("--tasks", type=int, help="Tasks per path per repetition (250; quick 150).")
    parser.add_argument(
        "--latency-samples", type=int, help="Submit->running samples per repetition (150)."
    )
    parser.add_argument("--noisy-queued", type=int, help="The flooding tenant's queue (10000).")
    parser.add_argument("--overhead-samples", type=int, help="Runtime vs raw bwrap pairs (100).")
    parser.add_argument(
        "--parallelism",
        type=int,
        default=DEFAULT_PARALLELISM,
        help="Sandboxes at once in every compared path (8).",
    )
    parser.add_argument("--scale-tasks", type=int, help="Celery executor batch per point (400).")
    parser.add_argument(
        "--scale-workers", help="Celery executor curve: comma-separated worker counts (1,2,4)."
    )
    parser.add_argument("--claim-deep", type=int, help="Deep queue for the claim (1,000,000).")
    parser.add_argument("--log-mib", type=int, help="MB each log run prints (2,148; quick 256).")
    parser.add_argument("--log-runs", type=int, help="Log cost runs (3).")
    parser.add_argument("--claim-rounds", type=int, help="Claim rounds per scheduler (200).")
    parser.add_argument("--docker-repetitions", type=int, help="Docker runtime vs run (10).")
    parser.add_argument("--meter-rows", type=int, help="Ledger rows to report (100,000).")
    parser.add_argument("--meter-runs", type=int, help="Meter-event reporting runs (3).")
    parser.add_argument("--meter-hours", type=int, help="Hours the ledger spans (24).")
    add_database_option(parser)
    add_postgres_option(parser)
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("SAASSY_BENCH_REDIS_URL", "redis://127.0.0.1:6379/5"),
        help="The Celery paths' broker (DB 5; its queues are deleted afterwards, never flushed).",
    )
    parser.add_argument("--out", type=Path, help="Default: bench/results/latest[-postgresql].json")
    parser.add_argument("--profile", action="store_true", help="py-spy the server's throughput.")
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> tuple[EngineSizes, int]:
    sizes = (
        EngineSizes(tasks=150, latency_samples=50, noisy_queued=3000)
        if args.quick
        else EngineSizes()
    )
    sizes = replace(
        sizes,
        tasks=args.tasks or sizes.tasks,
        latency_samples=args.latency_samples or sizes.latency_samples,
        noisy_queued=args.noisy_queued or sizes.noisy_queued,
    )
    overhead = args.overhead_samples or (20 if args.quick else 100)
    return sizes, overhead


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    console = Console()
    sizes, overhead_samples = sizes_from(args)
    postgresql = bool(args.database_url and args.database_url.startswith("postgres"))
    out = args.out or RESULTS / ("latest-postgresql.json" if postgresql else "latest.json")
    logs = out.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    numbers: dict[str, float] = {
        "parallelism": float(args.parallelism),
        "tasks": float(sizes.tasks),
    }

    def phase(title: str) -> None:
        console.print(f"[bold]{title}[/] [dim]({time.monotonic() - began:.0f} s)[/]")
        write_results(numbers, out)  # so far: a later phase's failure loses nothing before it

    phase(f"Sandbox: the runtime's overhead over raw bwrap, {overhead_samples} pairs")
    numbers |= run_overhead_numbers(overhead_samples, args.parallelism)

    headline = HeadlineSizes(sizes, args.repetitions or 3, args.parallelism)
    phase(
        f"Headline, {headline.repetitions} repetitions: {sizes.tasks} echo tasks through raw "
        "bwrap, the runtime, Saassy, Celery + plain bwrap, Celery + Saassy's runtime; "
        f"submit->running, then beside {sizes.noisy_queued} queued for another tenant"
    )
    profiler = None
    if args.profile:
        profiler = partial(_profile_to, out.parent / "profile-throughput.txt")
    numbers |= run_headline(
        headline, args.database_url, args.redis_url, logs, profiler, console.print
    )

    numbers |= submit_api_numbers(args.database_url, logs, args.quick, args.repetitions, phase)

    base = QUICK_SCALE if args.quick else ScaleSizes()
    scale = replace(
        base,
        tasks=args.scale_tasks or base.tasks,
        latency_samples=args.latency_samples or base.latency_samples,
        concurrency=max(1, args.parallelism // 2),  # two workers: Celery's concurrency
    )
    if args.scale_workers:
        scale = replace(scale, workers=tuple(int(n) for n in args.scale_workers.split(",")))
    counts = ", ".join(str(n) for n in scale.workers)
    phase(f"{SCALE_TITLE}: {scale.tasks} tasks for each of {counts} worker(s)")
    with tempfile.TemporaryDirectory(prefix="saassy-bench-scale-") as root:
        numbers |= run_celery_executor(scale, args.postgres_url, args.redis_url, Path(root), logs)

    claim_deep = args.claim_deep or (100_000 if args.quick else 1_000_000)
    phase(f"Claim cost on PostgreSQL: 1,000 and {claim_deep:,} queued, two schedulers")
    numbers |= run_claim_cost(
        args.postgres_url,
        deep=claim_deep,
        rounds=args.claim_rounds or (50 if args.quick else 200),
        plans_dir=out.parent,
    )

    phase("Docker runtime against docker run")
    numbers |= run_docker_overhead(args.docker_repetitions or (3 if args.quick else 10))

    phase("Egress proxy vs direct: 1 KiB GETs and 10 MB downloads on loopback")
    numbers |= run_egress_numbers(QUICK_EGRESS if args.quick else EgressSizes())

    log_sizes = QUICK_LOGS if args.quick else LogSizes()
    if args.log_mib:
        log_sizes = replace(log_sizes, blocks=args.log_mib)
    if args.log_runs:
        log_sizes = replace(log_sizes, runs=args.log_runs)
    phase(f"{log_title(log_sizes)}: server CPU against billed CPU and cat")
    numbers |= run_log_numbers(log_sizes, args.database_url, logs / "server-logs.log")

    phase(TASK_LIST_TITLE)
    numbers |= run_task_list_numbers(args.database_url, runs=3 if args.quick else 5)

    meter_sizes = QUICK_METER_EVENTS if args.quick else MeterSizes()
    meter_sizes = replace(
        meter_sizes,
        rows=args.meter_rows or meter_sizes.rows,
        runs=args.meter_runs or meter_sizes.runs,
        hours=args.meter_hours or meter_sizes.hours,
    )
    phase(f"{METER_EVENT_TITLE}: {meter_sizes.rows:,} ledger rows")
    numbers |= run_meter_event_numbers(meter_sizes, args.database_url)

    numbers = celery_executor_ratios(numbers)
    numbers["postgresql"] = float(postgresql)
    numbers["bench_seconds"] = time.monotonic() - began
    print_table(numbers, postgresql, console)
    print_rows(submit_api.TITLE, submit_api.ROWS, numbers, console)
    print_rows("Egress proxy vs direct, loopback", EGRESS_ROWS, numbers, console)
    print_rows(log_title(log_sizes), LOG_ROWS, numbers, console)
    print_rows(TASK_LIST_TITLE, TASK_LIST_ROWS, numbers, console)
    print_rows(METER_EVENT_TITLE, METER_EVENT_ROWS, numbers, console)
    print_rows(SCALE_TITLE, scale_rows(scale), numbers, console)
    print_rows(CLAIM_TITLE, CLAIM_ROWS, numbers, console)
    print_rows(DOCKER_TITLE, DOCKER_ROWS, numbers, console)
    write_results(numbers, out)
    console.print(f"Wrote {out} (server and worker logs in {logs})")
    if args.profile:
        _print_profile(out.parent / "profile-throughput.txt", console)


def submit_api_numbers(
    database_url: str | None,
    logs: Path,
    quick: bool,
    repetitions: int | None,
    phase: Callable[[str], None],
) -> dict[str, float]:
    """Its numbers by the keys of its ROWS (`submit_api_vs_bare` with `_min`, `_max`)."""
    phase(submit_api.TITLE)
    sizes = submit_api.QUICK if quick else submit_api.ApiSizes()
    if repetitions:
        sizes = replace(sizes, repetitions=repetitions)
    return submit_api.run_submit_api_numbers(database_url, sizes, logs)


def _profile_to(path: Path, pid: int) -> AbstractContextManager[None]:
    return profiling.record(pid, path)


def _print_profile(path: Path, console: Console) -> None:
    console.print("[bold]Server profile during the throughput run[/] (inclusive share of samples)")
    for frame, share in profiling.top_frames(path):
        console.print(f"{share:6.1%}  {frame}")


if __name__ == "__main__":
    main()
