"""What a task's output costs the server, against what the task is billed and against `cat`.

`python -m bench.logs [--quick]` on its own, or as a phase of `python -m bench`. A task prints
2 GiB in 100-byte lines (1 MB writes, as a buffered program does) through a real server
(`python -m bench.server`); the server's own CPU over the task (from /proc, its sandboxes are
other processes) is set against the CPU the task is billed (its cgroup's, from its attempt row)
and against the floor: the same program, outside any sandbox, piped through a pipe of the same
size into `cat > /dev/null`, whose CPU is what merely reading the bytes costs. A second task
prints 8 MB, all of it kept (stored and published); its server CPU beyond a no-op task's, per
MiB, is what keeping a MiB of logs costs (three of each per run). Each run measures all of
them; the ratios are taken per run, then their median and spread (max - min) across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import statistics
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from sqlalchemy import select

from bench import live_logs
from bench.client import Auditor, BenchError, Tenant, http_client, sign_up
from bench.report import Row, print_rows, write_results
from bench.server import ServerProcess
from bench.stage import BENCH_CATALOG, Stage, add_database_option, scratch_stage
from saassy.models import TaskAttempt

PYTHON = "/usr/bin/python3"
BLOCK_LINES = 10_000  # of 100 bytes: one 1 MB write
PRINTER = (
    "import sys\n"
    f"block = (b'x' * 99 + b'\\n') * {BLOCK_LINES}\n"
    "write = sys.stdout.buffer.write\n"
    "for _ in range(int(sys.argv[1])):\n"
    "    write(block)\n"
)
KEPT_BLOCKS = 8  # 8 MB: under the 8 MiB a task's log keeps
KEPT_REPEATS = 3  # per run: the server's CPU is read in 10 ms ticks
MIB = 1024 * 1024
PIPE_SIZE = 1024 * 1024  # as the runtime's pipes


@dataclass(frozen=True)
class LogSizes:
    runs: int = 3
    blocks: int = 2148  # 2.148 GB = 2.0 GiB

    @property
    def printed_mib(self) -> float:
        return self.blocks * BLOCK_LINES * 100 / MIB


QUICK = LogSizes(runs=3, blocks=256)  # 256 MB

ROWS = [
    Row("logs_printed_mib", "Printed by the task, in 100-byte lines", "MiB"),
    Row("logs_billed_cpu_s", "Task's billed CPU (its cgroup)", "s"),
    Row("logs_server_cpu_s", "Server CPU over the task", "s"),
    Row("logs_floor_cpu_s", "cat > /dev/null of the same output", "s"),
    Row("logs_server_vs_billed", "Server CPU / billed CPU", "x", at_most=2.0),
    Row("logs_server_vs_billed_spread", "... spread across runs", "x"),
    Row("logs_floor_vs_writer", "Floor: cat's CPU / the writer's", "x"),
    Row("logs_server_vs_floor", "Server CPU / cat's CPU", "x"),
    Row("logs_server_vs_floor_spread", "... spread across runs", "x"),
    Row("logs_server_ms_per_mib_printed", "Server CPU per MiB printed", "ms"),
    Row("logs_server_ms_per_mib_kept", "Server CPU per MiB kept (8 MB task - no-op)", "ms"),
    *live_logs.ROWS,
]


def catalog(sizes: LogSizes) -> str:
    types = ""
    for name, blocks in (("print_big", sizes.blocks), ("print_kept", KEPT_BLOCKS)):
        command = json.dumps([PYTHON, "-c", PRINTER, str(blocks)])  # JSON strings are TOML's
        types += f"""
[task_types.{name}]
title = "Prints {blocks} MB"
command = {command}
default_timeout_s = 600
max_timeout_s = 600
retries = 0
resources = {{ memory_mb = 256, cpus = 1, pids = 32, disk_mb = 16 }}
"""
    return BENCH_CATALOG + types + live_logs.TICKER_TYPE


def floor_once(blocks: int) -> tuple[float, float]:
    """The printer outside any sandbox into `cat > /dev/null`: (cat's CPU, the writer's)."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    writer = subprocess.Popen([PYTHON, "-c", PRINTER, str(blocks)], stdout=write_end)  # noqa: S603
    cat = subprocess.Popen(["cat"], stdin=read_end, stdout=subprocess.DEVNULL)  # noqa: S607
    os.close(read_end)
    os.close(write_end)
    cpu = {}
    for name, process in (("writer", writer), ("cat", cat)):
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if process.returncode != 0:
            raise BenchError(f"the floor's {name} exited {process.returncode}")
        cpu[name] = usage.ru_utime + usage.ru_stime
    return cpu["cat"], cpu["writer"]


async def task_once(
    server: ServerProcess, auditor: Auditor, tenant: Tenant, type_: str
) -> tuple[float, float]:
    """One task of `type_` from submission to terminal: (server CPU, billed CPU)."""
    async with http_client(server.url) as client:
        before = server.cpu_seconds()
        response = await client.post(
            "/api/v1/tasks", json={"type": type_, "input": {}}, headers=tenant.headers
        )
        if response.status_code != 202:
            raise BenchError(f"submit answered {response.status_code}: {response.text}")
        task_id = uuid.UUID(response.json()["id"])
        await auditor.wait_task(task_id, timeout_s=600, poll_s=0.05)
        spent = server.cpu_seconds() - before
    query = select(TaskAttempt.status, TaskAttempt.cpu_seconds).where(
        TaskAttempt.task_id == task_id
    )
    async with auditor.engine.connect() as conn:
        status, billed = (await conn.execute(query)).one()
    if status != "succeeded" or billed is None:
        raise BenchError(f"the {type_} task ended {status}")
    return spent, float(billed)


async def _runs(stage: Stage, sizes: LogSizes, log: Path) -> list[dict[str, float]]:
    runs = []
    auditor = Auditor(stage.database_url)
    try:
        with ServerProcess(stage.server_env(), log) as server:
            async with http_client(server.url) as client:
                tenant = await sign_up(client)
            await task_once(server, auditor, tenant, "noop")  # warm the server
            for _ in range(sizes.runs):
                floor_cpu, writer_cpu = await asyncio.to_thread(floor_once, sizes.blocks)
                server_cpu, billed = await task_once(server, auditor, tenant, "print_big")
                kept_extra = 0.0
                for _ in range(KEPT_REPEATS):
                    kept_extra += (await task_once(server, auditor, tenant, "print_kept"))[0]
                    kept_extra -= (await task_once(server, auditor, tenant, "noop"))[0]
                runs.append(
                    {
                        "server": server_cpu,
                        "billed": billed,
                        "floor": floor_cpu,
                        "writer": writer_cpu,
                        "kept_extra": kept_extra / KEPT_REPEATS,
                    }
                    | await live_logs.live_numbers(server, auditor, tenant)
                )
    finally:
        await auditor.close()
    return runs


def combine(runs: list[dict[str, float]], sizes: LogSizes) -> dict[str, float]:
    def median(values: list[float]) -> float:
        return statistics.median(values)

    numbers = {
        "logs_runs": float(len(runs)),
        "logs_printed_mib": sizes.printed_mib,
        "logs_billed_cpu_s": median([r["billed"] for r in runs]),
        "logs_server_cpu_s": median([r["server"] for r in runs]),
        "logs_floor_cpu_s": median([r["floor"] for r in runs]),
        "logs_floor_vs_writer": median([r["floor"] / r["writer"] for r in runs]),
        "logs_server_ms_per_mib_printed": median([r["server"] for r in runs])
        * 1000
        / sizes.printed_mib,
        "logs_server_ms_per_mib_kept": median([r["kept_extra"] for r in runs])
        * 1000
        / (KEPT_BLOCKS * BLOCK_LINES * 100 / MIB),
    }
    for key in (row.key for row in live_logs.ROWS if not row.key.endswith("_spread")):
        numbers[key] = median([r[key] for r in runs])
    for key in ("live_log_added_p99_ms", "live_log_browser_vs_sse_p99"):
        values = [r[key] for r in runs]
        numbers[f"{key}_spread"] = max(values) - min(values)
        numbers[f"{key}_min"], numbers[f"{key}_max"] = min(values), max(values)
    for key, over in (("logs_server_vs_billed", "billed"), ("logs_server_vs_floor", "floor")):
        ratios = [r["server"] / r[over] for r in runs]
        numbers[key] = median(ratios)
        numbers[f"{key}_spread"] = max(ratios) - min(ratios)
    return numbers


def run_log_numbers(
    sizes: LogSizes, database_url: str | None, log: Path, parallelism: int = 8
) -> dict[str, float]:
    """Every log number, on a scratch stage of its own."""
    with scratch_stage(parallelism, database_url, "logs", catalog(sizes)) as stage:
        runs = asyncio.run(_runs(stage, sizes, log))
    return combine(runs, sizes)


def title(sizes: LogSizes) -> str:
    return f"Logs: a task printing {sizes.printed_mib:,.0f} MiB in 100-byte lines"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.logs", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="256 MB instead of 2 GiB.")
    parser.add_argument("--runs", type=int, help="Runs (3).")
    add_database_option(parser)
    parser.add_argument("--out", type=Path, help="Write the numbers as JSON here.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = QUICK if args.quick else LogSizes()
    if args.runs:
        sizes = LogSizes(runs=args.runs, blocks=sizes.blocks)
    log = Path(__file__).parent / "results" / "logs" / "server-logs-bench.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    numbers = run_log_numbers(sizes, args.database_url, log)
    print_rows(title(sizes), ROWS, numbers, Console())
    if args.out:
        write_results(numbers, args.out)


if __name__ == "__main__":
    main()
