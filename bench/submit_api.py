"""The authenticated submit API against a bare FastAPI endpoint, both on a real uvicorn server.

`python -m bench.submit_api [--repetitions 3] [--duration 4] [--connections 16] [--workers 1]
[--generator auto|wrk|python] [--database-url postgresql://...]`

Three servers run side by side from `python -m bench.server` (bench/server.py), so all are
served the same way (`saassy.server.serve`: uvicorn, uvloop, its httptools protocol, the access
log off): Saassy with the engine off (`SAASSY_RUN_ENGINE=false`, only the API is measured) on
the bench catalog; the floor, `--bare`, a FastAPI endpoint that validates the same body and
answers 202 (bench/submit_path.py's `bare_app`); and the durable floor, `--durable`, that
endpoint storing each submission with one INSERT and its COMMIT on the same database through
the same database layer (bench/durable_floor.py). One load generator (bench/load.py; `wrk` when
installed) sends all the same bytes: `POST /api/v1/tasks` with the no-op task and an API key,
which the floors ignore, for `--duration` seconds from `--connections` keep-alive connections,
in turn (the order rotated by one each repetition).

Reported: requests/s, p50 and p99 of each (medians over the repetitions), the server's CPU per
request (its whole process tree, from /proc) and the ratios Saassy / bare and Saassy / durable
per repetition, as their medians with the lowest and the highest. Every request must be
answered 202: a 4xx or 5xx, a socket error, or a count of stored rows that does not match the
202s, fails the run.

For a harness: `await measure(stage, sizes, logs)` on a stage it made (bench/stage.py), or
`run_submit_api_numbers(database_url, sizes, logs)`, which makes its own; both return the
numbers by the keys of `ROWS`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import func, select

from bench import durable_floor, profiling
from bench.client import NOOP, BenchError, http_client
from bench.load import GENERATORS, Load, Request, pick_generator, run_load
from bench.report import Row
from bench.server import ServerProcess
from bench.stage import Stage, add_database_option, scratch_stage
from bench.submit_path import credentials
from saassy.kit.db import create_engine
from saassy.models import Task

LOGS = Path(__file__).parent / "results" / "logs"
TITLE = "Submit API: authenticated POST /api/v1/tasks against a bare FastAPI endpoint"
ROWS = [
    Row("submit_api_per_s", "Saassy, API key, engine off", "req/s"),
    Row("submit_api_p50_ms", "... p50", "ms"),
    Row("submit_api_p99_ms", "... p99", "ms", at_most=50.0),
    Row("submit_api_cpu_ms", "... server CPU per request", "ms"),
    Row("bare_submit_per_s", "Bare FastAPI, same body", "req/s"),
    Row("bare_submit_p50_ms", "... p50", "ms"),
    Row("bare_submit_p99_ms", "... p99", "ms"),
    Row("bare_submit_cpu_ms", "... server CPU per request", "ms"),
    Row("submit_api_vs_bare", "Saassy / bare, req/s (median of runs)", "x", at_least=0.5),
    Row("submit_api_vs_bare_min", "... lowest run", "x"),
    Row("submit_api_vs_bare_max", "... highest run", "x"),
    Row("durable_submit_per_s", "Bare FastAPI storing each (INSERT, COMMIT)", "req/s"),
    Row("durable_submit_p99_ms", "... p99", "ms"),
    Row("durable_submit_cpu_ms", "... server CPU per request", "ms"),
    Row("durable_vs_bare", "Durable floor / bare, req/s", "x"),
    Row("submit_api_vs_durable", "Saassy / durable floor, req/s", "x"),
    Row("submit_api_vs_durable_min", "... lowest run", "x"),
    Row("submit_api_vs_durable_max", "... highest run", "x"),
]


@dataclass(frozen=True)
class ApiSizes:
    repetitions: int = 3
    duration_s: float = 4.0
    warm_up_s: float = 2.0
    connections: int = 16
    workers: int = 1  # uvicorn worker processes, the same for both servers
    generator: str = "auto"
    profile: Path | None = None  # py-spy the Saassy server over one more run, into this file


QUICK = ApiSizes(duration_s=3.0, warm_up_s=1.0)


@dataclass
class Side:
    """One server of the comparison and what each repetition measured of it."""

    name: str
    server: ServerProcess
    runs: list[Load]
    cpu_s: list[float]
    waited_s: list[float]

    async def drive(self, request: Request, sizes: ApiSizes, seconds: float) -> Load:
        cpu, waited = self.server.tree_times()
        load = await run_load(
            replace(request, url=self.server.url), sizes.connections, seconds, sizes.generator
        )
        if load.failed:
            raise BenchError(
                f"{self.name}: {load.failed} of {load.answered} requests failed "
                f"(see {self.server.log_path})"
            )
        cpu_after, waited_after = self.server.tree_times()
        self.cpu_s.append(cpu_after - cpu)
        self.waited_s.append(waited_after - waited)
        return load


async def measure(stage: Stage, sizes: ApiSizes, logs: Path) -> dict[str, float]:
    """The numbers of `ROWS`, from three servers started on `stage`, stopped before returning."""
    await durable_floor.create_table(stage.database_url)
    env = stage.server_env() | {"SAASSY_RUN_ENGINE": "false"}
    args = ["--workers", str(sizes.workers)]
    if sizes.workers > 1:  # as `saassy api --workers N` requires with metrics served
        metrics_dir = stage.root / "prometheus"
        metrics_dir.mkdir(exist_ok=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    saassy = ServerProcess(env, logs / "server-submit-api.log", args)
    bare = ServerProcess(env, logs / "server-submit-bare.log", [*args, "--bare"])
    durable = ServerProcess(env, logs / "server-submit-durable.log", [*args, "--durable"])
    servers = (saassy, bare, durable)
    try:
        await asyncio.gather(*(asyncio.to_thread(server.__enter__) for server in servers))
        return await _compare(
            stage,
            sizes,
            Side("saassy", saassy, [], [], []),
            Side("bare", bare, [], [], []),
            Side("durable", durable, [], [], []),
        )
    finally:
        await asyncio.gather(*(asyncio.to_thread(server.stop) for server in servers))


async def _compare(
    stage: Stage, sizes: ApiSizes, saassy: Side, bare: Side, durable: Side
) -> dict[str, float]:
    engine = create_engine(stage.database_url)
    try:
        async with http_client(saassy.server.url) as client:
            _, api_key = await credentials(client, engine)
        request = Request(
            url="",
            method="POST",
            path="/api/v1/tasks",
            body=_json(NOOP),
            headers={"Content-Type": "application/json", **api_key},
        )
        sides = (bare, saassy, durable)
        accepted = {side.name: 0 for side in sides}
        for side in sides:
            accepted[side.name] += (await side.drive(request, sizes, sizes.warm_up_s)).answered
            side.cpu_s.clear()
            side.waited_s.clear()
        for repetition in range(sizes.repetitions):
            for turn in range(len(sides)):
                side = sides[(repetition + turn) % len(sides)]
                side.runs.append(await side.drive(request, sizes, sizes.duration_s))
        for side in sides:
            accepted[side.name] += sum(load.answered for load in side.runs)
        if sizes.profile is not None:
            with profiling.record(saassy.server.pid, sizes.profile):
                extra = await run_load(
                    replace(request, url=saassy.server.url),
                    sizes.connections,
                    sizes.duration_s,
                    sizes.generator,
                )
            accepted["saassy"] += extra.answered
        async with engine.connect() as conn:
            tasks = (await conn.execute(select(func.count()).select_from(Task))).scalar_one()
    finally:
        await engine.dispose()
    rows = await durable_floor.stored(stage.database_url)
    # A request cut off at the end of a run may have committed its row unanswered.
    cut_off = sizes.connections * (sizes.repetitions + 2)
    for name, count in (("saassy", tasks), ("durable", rows)):
        if not accepted[name] <= count <= accepted[name] + cut_off:
            raise BenchError(f"{name}: {accepted[name]} answered 202 but {count} rows are stored")
    return _numbers(sizes, saassy, bare, durable)


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _ratios(name: str, ours: Side, floor: Side) -> dict[str, float]:
    """`name`: ours over the floor, req/s, per repetition: the median, lowest and highest."""
    ratios = [a.per_s / b.per_s for a, b in zip(ours.runs, floor.runs, strict=True)]
    return {name: statistics.median(ratios), f"{name}_min": min(ratios), f"{name}_max": max(ratios)}


def _numbers(sizes: ApiSizes, saassy: Side, bare: Side, durable: Side) -> dict[str, float]:
    numbers = {
        **_ratios("submit_api_vs_bare", saassy, bare),
        **_ratios("submit_api_vs_durable", saassy, durable),
        **_ratios("durable_vs_bare", durable, bare),
        "submit_api_connections": float(sizes.connections),
        "submit_api_workers": float(sizes.workers),
    }
    for prefix, side in (
        ("submit_api", saassy),
        ("bare_submit", bare),
        ("durable_submit", durable),
    ):
        answered = sum(load.answered for load in side.runs)
        numbers |= {
            f"{prefix}_per_s": statistics.median(load.per_s for load in side.runs),
            f"{prefix}_p50_ms": statistics.median(load.p50_ms for load in side.runs),
            f"{prefix}_p99_ms": statistics.median(load.p99_ms for load in side.runs),
            f"{prefix}_cpu_ms": sum(side.cpu_s) * 1000 / answered,
            # Runnable but not running: the machine's other work took the CPU meanwhile.
            f"{prefix}_cpu_wait_ms": sum(side.waited_s) * 1000 / answered,
            f"{prefix}_generator_cpu_ms": (
                sum(load.generator_cpu_s for load in side.runs) * 1000 / answered
            ),
        }
    return numbers


def run_submit_api_numbers(
    database_url: str | None, sizes: ApiSizes, logs: Path
) -> dict[str, float]:
    """For `python -m bench`: the numbers of one comparison on a scratch database."""
    with scratch_stage(1, database_url, "submit-api") as stage:
        return asyncio.run(measure(stage, sizes, logs))


def print_numbers(numbers: dict[str, float], sizes: ApiSizes, generator: str) -> None:
    print(
        f"{TITLE}\n  {sizes.repetitions} x {sizes.duration_s:g} s each, "
        f"{sizes.connections} connections, {sizes.workers} worker(s), generator {generator}"
    )
    for label, prefix in (
        ("Saassy", "submit_api"),
        ("bare", "bare_submit"),
        ("durable", "durable_submit"),
    ):
        print(
            f"  {label:>7}: {numbers[f'{prefix}_per_s']:8.0f} req/s  "
            f"p50 {numbers[f'{prefix}_p50_ms']:6.2f} ms  p99 {numbers[f'{prefix}_p99_ms']:6.2f} ms"
            f"  server CPU {numbers[f'{prefix}_cpu_ms']:.3f} ms/req"
            f" (waited for one {numbers[f'{prefix}_cpu_wait_ms']:.3f})"
            f"  (generator {numbers[f'{prefix}_generator_cpu_ms']:.3f})"
        )
    for label, key in (
        ("Saassy / bare", "submit_api_vs_bare"),
        ("Saassy / durable", "submit_api_vs_durable"),
        ("durable / bare", "durable_vs_bare"),
    ):
        print(
            f"  {label}: {numbers[key]:.3f}x (runs "
            f"{numbers[f'{key}_min']:.3f}-{numbers[f'{key}_max']:.3f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.submit_api", description=__doc__)
    defaults = ApiSizes()
    parser.add_argument("--repetitions", type=int, default=defaults.repetitions)
    parser.add_argument("--duration", type=float, default=defaults.duration_s, help="Seconds.")
    parser.add_argument("--warm-up", type=float, default=defaults.warm_up_s, help="Seconds.")
    parser.add_argument("--connections", type=int, default=defaults.connections)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--generator", choices=GENERATORS, default=defaults.generator)
    parser.add_argument("--profile", type=Path, help="py-spy one more Saassy run into FILE.")
    parser.add_argument("--logs", type=Path, default=LOGS, help="The servers' logs.")
    add_database_option(parser)
    args = parser.parse_args()
    sizes = ApiSizes(
        repetitions=args.repetitions,
        duration_s=args.duration,
        warm_up_s=args.warm_up,
        connections=args.connections,
        workers=args.workers,
        generator=pick_generator(args.generator),
        profile=args.profile,
    )
    args.logs.mkdir(parents=True, exist_ok=True)
    numbers = run_submit_api_numbers(args.database_url, sizes, args.logs)
    print_numbers(numbers, sizes, sizes.generator)
    if args.profile:
        for frame, share in profiling.top_frames(args.profile, 40):
            print(f"  {share:6.1%}  {frame}")


if __name__ == "__main__":
    main()
