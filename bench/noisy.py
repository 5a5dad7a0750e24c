"""The noisy-neighbour phase alone, with where the quiet tenant's wait went.

`python -m bench.noisy [--samples 200] [--runs 1] [--queued 10000] [--database-url URL]`

Each run starts a server on a scratch stage and runs the headline's phase
(`engine_runs.latency_and_noisy`): the quiet tenant's samples solo, beside a flooding tenant,
and beside it with a task of its own running. Then, from the rows, each sample's wait split in
two: created -> claimed (the attempt's row) and claimed -> the program's first instruction (the
sandbox's start). Meant for side-by-side comparisons of two checkouts (run each from its own
tree, alternating), which the full `make bench` does not give.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bench.client import BenchError
from bench.echo import started_at
from bench.engine_runs import EngineSizes, latency_and_noisy, percentile
from bench.sandbox_runs import sandbox_kit
from bench.server import ServerProcess
from bench.stage import Stage, add_database_option, scratch_stage
from saassy.kit.db import create_engine
from saassy.models import Task, TaskAttempt

LOGS = Path(__file__).parent / "results" / "logs"
WARM_UP = 5  # latency_and_noisy's first samples, before the solo ones
PHASES = ("solo", "flooded", "busy")
SHOWN = (
    "submit_to_running_p99_ms",
    "noisy_neighbour_submit_to_running_p99_ms",
    "noisy_neighbour_p99_ratio",
    "noisy_neighbour_busy_submit_to_running_p99_ms",
    "noisy_neighbour_busy_p99_ratio",
    "noisy_raw_start_p99_ms",
    "noisy_neighbour_vs_raw_start_p99",
    "noisy_raw_solo_start_p99_ms",
    "noisy_floor_p99_ratio",
)


def _epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


async def split(stage: Stage, samples: int) -> dict[str, dict[str, list[float]]]:
    """Per phase: created -> claimed and claimed -> program, in ms, of the quiet tenant's echo
    tasks (the organization with the fewest tasks), in the order they were taken."""
    engine = create_engine(stage.database_url)
    try:
        async with engine.connect() as conn:
            counts = await conn.execute(
                select(Task.organization_id, func.count()).group_by(Task.organization_id)
            )
            quiet = min(counts.all(), key=lambda row: row[1])[0]
            rows = await conn.execute(
                select(Task.created_at, TaskAttempt.created_at, Task.result)
                .join(TaskAttempt, TaskAttempt.task_id == Task.id)
                .where(Task.organization_id == quiet, Task.type == "echo")
                .order_by(Task.created_at)
            )
            taken = rows.all()[WARM_UP:]
    finally:
        await engine.dispose()
    phases: dict[str, dict[str, list[float]]] = {}
    for index, phase in enumerate(PHASES):
        chosen = taken[index * samples : (index + 1) * samples]
        phases[phase] = {
            "claim": [(_epoch(c) - _epoch(t)) * 1000 for t, c, _ in chosen],
            "start": [(started_at(r)[1] - _epoch(c)) * 1000 for _, c, r in chosen],
        }
    return phases


def run_once(database_url: str | None, samples: int, queued: int) -> None:
    LOGS.mkdir(parents=True, exist_ok=True)
    kit = sandbox_kit()
    with scratch_stage(8, database_url, "noisy") as stage:
        with ServerProcess(stage.server_env(), LOGS / "server-noisy.log") as server:
            numbers = asyncio.run(
                latency_and_noisy(
                    server,
                    stage,
                    EngineSizes(latency_samples=samples, noisy_queued=queued),
                    kit,
                )
            )
        phases = asyncio.run(split(stage, samples))
    shutil.rmtree(kit.root, ignore_errors=True)
    print("  " + "  ".join(f"{key} {numbers[key]:.2f}" for key in SHOWN))
    for phase, parts in phases.items():
        shown = "  ".join(
            f"{part} p50 {percentile(values, 50):6.1f} p99 {percentile(values, 99):6.1f} ms"
            for part, values in parts.items()
        )
        print(f"  {phase:>7}: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.noisy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # the example keeps its line
    )
    parser.add_argument("--samples", type=int, default=200, help="Per phase and run (200).")
    parser.add_argument("--runs", type=int, default=1, help="Runs, one after the other (1).")
    parser.add_argument(
        "--queued", type=int, default=10_000, help="The flooding tenant's queue (10000)."
    )
    add_database_option(parser)
    args = parser.parse_args()
    try:
        for run in range(args.runs):
            print(f"run {run + 1} of {args.runs}")
            run_once(args.database_url, args.samples, args.queued)
    except BenchError as error:  # one line, and where the server says why (no sandbox, say)
        sys.exit(f"error: {error} (the server's log: {LOGS / 'server-noisy.log'})")


if __name__ == "__main__":
    main()
