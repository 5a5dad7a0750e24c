"""What a claim costs with 1,000 and with 1,000,000 queued tasks on PostgreSQL, two schedulers
claiming at once.

`python -m bench.claim_cost [--quick] [--deep 1000000] [--rounds 200] [--postgres-url URL]`

In two databases of its own on the server (one per depth), `--organizations` organizations
share `--shallow` and `--deep` queued no-op tasks (`INSERT ... SELECT generate_series`), each
then vacuumed and analyzed as autovacuum would leave it. Two processes, each a `Dispatcher` for an
executor with `--slots` free slots that starts nothing (as a scheduler's Celery executor: the
attempts are left `dispatched`), claim at once, in four blocks of `--rounds`/4 rounds per depth,
alternating which depth goes first. A claim is one `dispatch_once`: its transaction's four
statements (the organizations by index seeks, their due tasks and counts, the claim, the
attempts) and the commit. After each round the claimer puts what it claimed back in the queue
(not timed), so the depth stays what it says. The plans of one round at each depth
(`EXPLAIN (ANALYZE, BUFFERS)`, rolled back) go to bench/results/claim-plans-<depth>.txt.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
import tomllib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import event, text

from bench.client import BenchError
from bench.engine_path import RecordingExecutor
from bench.engine_runs import percentile
from bench.pg_scratch import add_postgres_option, scratch_database
from bench.report import Row, print_rows, write_results
from bench.stage import BENCH_CATALOG
from saassy.dispatch.dispatcher import Dispatcher
from saassy.dispatch.repository import DispatchRepository
from saassy.events.memory import MemoryEventBus
from saassy.kit.db import create_engine, create_sessionmaker
from saassy.plans.catalog import Catalog

RESULTS = Path(__file__).parent / "results"
TITLE = "Claim cost on PostgreSQL, two schedulers at once: deep queue against shallow"
ROWS = [
    Row("claim_shallow_p50_ms", "1,000 queued: claim round p50", "ms"),
    Row("claim_shallow_p99_ms", "... p99", "ms"),
    Row("claim_deep_p50_ms", "Deep queue: claim round p50", "ms"),
    Row("claim_deep_p99_ms", "... p99", "ms"),
    Row("claim_deep_vs_shallow_p50", "Deep / shallow, p50 (median of blocks)", "x", at_most=1.2),
    Row("claim_deep_vs_shallow_p50_min", "... lowest block", "x"),
    Row("claim_deep_vs_shallow_p50_max", "... highest block", "x"),
    Row("claim_deep_vs_shallow_p99", "Deep / shallow, p99", "x"),
    Row("claim_shallow_empty_rounds", "Rounds that found all taken, shallow", ""),
    Row("claim_deep_empty_rounds", "... deep", ""),
    Row("claim_deep_queued", "Deep queue's depth", "tasks"),
    Row("claim_plan_seq_scans", "Sequential scans of tasks, deep plans", ""),
]

ADD_ORGANIZATIONS = text("""
INSERT INTO organizations (id, created_at, name, personal, plan, plan_overrides)
SELECT gen_random_uuid(), now(), 'bench ' || g, false, 'bench', '{}'
FROM generate_series(1, :count) AS g
""")
# Round-robin over the organizations; run_after in the past, so every one is due.
ADD_TASKS = text("""
INSERT INTO tasks (id, created_at, organization_id, type, status, priority, input, timeout_s,
                   max_attempts, attempt_count, platform_losses, run_after)
SELECT gen_random_uuid(), now(), o.id, 'noop', 'queued', 0, '{}', 30, 1, 0, 0,
       now() - interval '1 minute'
FROM generate_series(0, :count - 1) AS g
JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM organizations) AS o
  ON o.k = g % :organizations
""")
PUT_BACK = [
    text("DELETE FROM task_attempts WHERE task_id = ANY(:ids)"),
    text(
        "UPDATE tasks SET status = 'queued', attempt_count = 0, started_at = NULL "
        "WHERE id = ANY(:ids)"
    ),
]


def bench_catalog() -> Catalog:
    return Catalog.model_validate(tomllib.loads(BENCH_CATALOG))


async def fill(database_url: str, organizations: int, tasks: int) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            if organizations:
                await conn.execute(ADD_ORGANIZATIONS, {"count": organizations})
            total = await conn.scalar(text("SELECT count(*) FROM organizations"))
            await conn.execute(ADD_TASKS, {"count": tasks, "organizations": total})
        async with engine.connect() as conn:  # settled, as autovacuum would leave it
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE organizations, tasks"))
    finally:
        await engine.dispose()


def claimer(database_url: str, rounds: int, slots: int, start_at: float) -> tuple[list[float], int]:
    """One scheduler's rounds, in a process of its own: per-round seconds, and how many
    rounds claimed nothing."""
    return asyncio.run(_claim_rounds(database_url, rounds, slots, start_at))


async def _claim_rounds(
    database_url: str, rounds: int, slots: int, start_at: float
) -> tuple[list[float], int]:
    engine = create_engine(database_url, pool_size=2)
    sessionmaker = create_sessionmaker(engine)
    executor = RecordingExecutor(slots)
    executor.starts_on_claim = False  # as the Celery executor: claimed attempts are dispatched
    dispatcher = Dispatcher(
        sessionmaker,
        Catalog.model_validate(tomllib.loads(BENCH_CATALOG)),
        executor,
        MemoryEventBus(),
    )
    seconds: list[float] = []
    empty: list[float] = []
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))  # both begin together
        for _ in range(rounds):
            began = time.perf_counter()
            claims = await dispatcher.dispatch_once()
            took = time.perf_counter() - began
            if not claims:  # the other scheduler held every organization this round found:
                empty.append(took)  # counted apart, a claim that finds nothing is cheaper
                continue
            seconds.append(took)
            async with engine.begin() as conn:
                for statement in PUT_BACK:
                    await conn.execute(statement, {"ids": [c.task_id for c in claims]})
            executor.finished = len(executor.claimed)
    finally:
        await engine.dispose()
    return seconds, len(empty)


def claim_concurrently(database_url: str, rounds: int, slots: int) -> tuple[list[float], int]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        start_at = time.time() + 3.0  # after both processes have imported everything
        futures = [pool.submit(claimer, database_url, rounds, slots, start_at) for _ in range(2)]
        results = [future.result() for future in futures]
    return [s for seconds, _ in results for s in seconds], sum(empty for _, empty in results)


async def explain_round(database_url: str, slots: int, path: Path) -> int:
    """One round's statements again under EXPLAIN (ANALYZE, BUFFERS), rolled back; returns how
    many sequential scans of `tasks` the plans hold."""
    engine = create_engine(database_url, pool_size=1)
    seen: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, many: bool) -> None:
        if not statement.startswith(("BEGIN", "EXPLAIN", "SELECT pg_")):
            seen.append((statement, parameters[0] if many else parameters))  # one row of many

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    executor = RecordingExecutor(slots)
    executor.starts_on_claim = False
    sessionmaker = create_sessionmaker(engine)
    dispatcher = Dispatcher(
        sessionmaker,
        Catalog.model_validate(tomllib.loads(BENCH_CATALOG)),
        executor,
        MemoryEventBus(),
    )
    try:
        async with sessionmaker() as session, session.begin():
            await dispatcher._claim_round(DispatchRepository(session), slots, 0)
            await session.rollback()
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        plans: list[str] = []
        async with engine.connect() as conn:
            for statement, parameters in seen:
                if statement.lstrip().upper().startswith("SELECT 1"):
                    continue
                transaction = await conn.begin()
                rows = await conn.exec_driver_sql(
                    f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters
                )
                plans.append(statement + "\n" + "\n".join(row[0] for row in rows))
                await transaction.rollback()
    finally:
        await engine.dispose()
    await asyncio.to_thread(path.write_text, "\n\n".join(plans) + "\n")
    return sum(plan.count("Seq Scan on tasks") for plan in plans)


BLOCKS = 4  # alternating blocks of rounds, shallow and deep: drift hits both alike


def run_claim_cost(
    postgres_url: str,
    *,
    shallow: int = 1000,
    deep: int = 1_000_000,
    organizations: int = 1000,
    rounds: int = 200,
    slots: int = 8,
    plans_dir: Path = RESULTS,
) -> dict[str, float]:
    """Two databases, one per depth, each filled, vacuumed and analyzed; then `BLOCKS` blocks
    of rounds on each, alternating which goes first. The ratio is per block, with its spread."""
    numbers: dict[str, float] = {"claim_deep_queued": float(deep)}
    ms: dict[str, list[float]] = {"shallow": [], "deep": []}
    block_p50: dict[str, list[float]] = {"shallow": [], "deep": []}
    empty = {"shallow": 0, "deep": 0}
    seq_scans = 0
    with (
        scratch_database(postgres_url, "claim1k") as shallow_url,
        scratch_database(postgres_url, "claimdeep") as deep_url,
    ):
        urls = {"shallow": shallow_url, "deep": deep_url}
        asyncio.run(fill(shallow_url, organizations, shallow))
        asyncio.run(fill(deep_url, organizations, deep))
        blocks = min(BLOCKS, rounds)  # a smoke run's few rounds: fewer, whole blocks
        for block in range(blocks):
            for label in ("shallow", "deep") if block % 2 == 0 else ("deep", "shallow"):
                seconds, nothing = claim_concurrently(urls[label], max(1, rounds // blocks), slots)
                if not seconds:
                    raise BenchError(f"every {label} round of block {block} claimed nothing")
                empty[label] += nothing
                ms[label] += [s * 1000 for s in seconds]
                block_p50[label].append(percentile([s * 1000 for s in seconds], 50))
        for label, depth in (("shallow", shallow), ("deep", deep)):
            plans = plans_dir / f"claim-plans-{depth}.txt"
            scans = asyncio.run(explain_round(urls[label], slots, plans))
            seq_scans += scans if label == "deep" else 0  # 1,000 rows: a scan may be cheapest
    for label in ("shallow", "deep"):
        numbers[f"claim_{label}_p50_ms"] = percentile(ms[label], 50)
        numbers[f"claim_{label}_p99_ms"] = percentile(ms[label], 99)
        numbers[f"claim_{label}_empty_rounds"] = float(empty[label])
    ratios = [d / s for d, s in zip(block_p50["deep"], block_p50["shallow"], strict=True)]
    numbers["claim_deep_vs_shallow_p50"] = statistics.median(ratios)
    numbers["claim_deep_vs_shallow_p50_min"] = min(ratios)
    numbers["claim_deep_vs_shallow_p50_max"] = max(ratios)
    numbers["claim_deep_vs_shallow_p99"] = (
        numbers["claim_deep_p99_ms"] / numbers["claim_shallow_p99_ms"]
    )
    numbers["claim_plan_seq_scans"] = float(seq_scans)
    return numbers


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.claim_cost", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100,000 deep, 50 rounds.")
    parser.add_argument("--shallow", type=int, default=1000)
    parser.add_argument("--deep", type=int)
    parser.add_argument("--organizations", type=int, default=1000)
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--slots", type=int, default=8)
    add_postgres_option(parser)
    parser.add_argument("--out", type=Path, default=RESULTS / "claim-cost.json")
    args = parser.parse_args(argv)
    deep = args.deep or (100_000 if args.quick else 1_000_000)
    rounds = args.rounds or (50 if args.quick else 200)
    console = Console()
    console.print(f"[bold]{TITLE}[/]: {args.shallow} and {deep} queued, {rounds} rounds each")
    numbers = run_claim_cost(
        args.postgres_url,
        shallow=args.shallow,
        deep=deep,
        organizations=args.organizations,
        rounds=rounds,
        slots=args.slots,
        plans_dir=args.out.parent,
    )
    print_rows(TITLE, ROWS, numbers, console)
    write_results(numbers, args.out)
    console.print(f"Wrote {args.out} (plans in {args.out.parent}/claim-plans-*.txt)")


if __name__ == "__main__":
    main()
