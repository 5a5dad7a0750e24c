"""The table and bench/results/latest.json: each number beside its docs/architecture.md budget."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    at_least: float | None = None  # the budget, as a lower bound ...
    at_most: float | None = None  # ... or an upper one; neither: context only

    @property
    def target(self) -> str:
        if self.at_least is not None:
            return f">= {self.at_least:g}"
        return f"<= {self.at_most:g}" if self.at_most is not None else ""

    def met(self, value: float) -> bool | None:
        if self.at_least is not None:
            return value >= self.at_least
        return value <= self.at_most if self.at_most is not None else None


def rows(postgresql: bool) -> list[Row]:
    p99_ms = 25.0 if postgresql else 10.0
    return [
        Row("throughput_tasks_per_s", "Saassy: API, durable, sandbox", "tasks/s"),
        Row("celery_throughput_tasks_per_s", "Celery + Redis, plain bwrap", "tasks/s"),
        Row(
            "celery_same_runtime_throughput_tasks_per_s",
            "Celery + Redis, Saassy's runtime",
            "tasks/s",
        ),
        Row("floor_throughput_tasks_per_s", "Raw bwrap spawn loop (floor)", "tasks/s"),
        Row("runtime_loop_throughput_tasks_per_s", "ProcessRuntime loop, no engine", "tasks/s"),
        Row("submit_rate_tasks_per_s", "API submissions while running", "req/s"),
        Row("server_cpu_ms_per_task", "Server CPU per task (API + engine)", "ms"),
        Row("machine_cpu_ms_per_task", "Machine CPU per task: Saassy", "ms"),
        Row("client_cpu_ms_per_task", "... of which its clients (this process)", "ms"),
        Row("celery_machine_cpu_ms_per_task", "... Celery + plain bwrap", "ms"),
        Row("celery_same_runtime_machine_cpu_ms_per_task", "... Celery + Saassy's runtime", "ms"),
        Row("floor_machine_cpu_ms_per_task", "... raw bwrap loop", "ms"),
        Row("machine_busy_share", "Machine busy during the drain: Saassy", "x"),
        Row("celery_machine_busy_share", "... Celery + plain bwrap", "x"),
        Row("throughput_vs_celery", "Throughput vs Celery + plain bwrap", "x", at_least=2.0),
        Row("throughput_vs_celery_same_runtime", "Throughput vs Celery, same runtime", "x"),
        Row("throughput_vs_floor", "Throughput vs raw loop", "x", at_least=0.8),
        Row("throughput_vs_runtime_loop", "Throughput vs runtime loop", "x"),
        Row("sandbox_start_to_program_p50_ms", "Raw bwrap: spawn -> program, p50", "ms"),
        Row("runtime_start_to_program_p50_ms", "Runtime: start -> program, p50", "ms"),
        Row("submit_to_running_p50_ms", "202 -> program running, p50", "ms"),
        Row("submit_to_running_p99_ms", "202 -> program running, p99", "ms"),
        Row(
            "submit_to_running_above_sandbox_p50_ms",
            "... above the raw start, p50",
            "ms",
            at_most=2.0,
        ),
        Row(
            "submit_to_running_above_sandbox_p99_ms",
            "... above the raw start, p99",
            "ms",
            at_most=p99_ms,
        ),
        Row("celery_submit_to_running_p50_ms", "Celery + plain bwrap: sent -> program, p50", "ms"),
        Row("celery_submit_to_running_p99_ms", "... p99", "ms"),
        Row("celery_submit_to_running_above_sandbox_p50_ms", "... above the raw start, p50", "ms"),
        Row("celery_submit_to_running_above_sandbox_p99_ms", "... above the raw start, p99", "ms"),
        Row("created_to_running_p50_ms", "Row created -> program, p50", "ms"),
        Row("created_to_running_p99_ms", "Row created -> program, p99", "ms"),
        Row("raw_bwrap_ms", "Raw bwrap /bin/true, median", "ms"),
        Row("runtime_start_ms", "ProcessRuntime /bin/true, median", "ms"),
        Row("runtime_overhead_ms", "Runtime over raw bwrap", "ms", at_most=2.0),
        Row("raw_bundled_bwrap_ms", "Raw bundled bwrap /bin/true, median", "ms"),
        Row("runtime_start_bundled_ms", "ProcessRuntime, bundled bwrap, median", "ms"),
        Row("runtime_overhead_bundled_ms", "Runtime over raw bundled bwrap", "ms", at_most=2.0),
        Row("bundled_vs_system_start", "Runtime start: bundled / system bwrap", "x"),
        Row("bundled_vs_system_start_spread", "... spread over 3 batches", "x"),
        Row("noisy_neighbour_submit_to_running_p99_ms", "202 -> program p99, flooded", "ms"),
        Row("noisy_neighbour_p99_ratio", "Flooded p99 / solo p99", "x", at_most=2.0),
        Row("noisy_neighbour_busy_submit_to_running_p99_ms", "... a task of its own running", "ms"),
        Row("noisy_neighbour_busy_p99_ratio", "... that p99 / solo p99", "x", at_most=2.0),
        Row("noisy_raw_start_p99_ms", "Raw bwrap start -> program p99, same flood", "ms"),
        Row("noisy_neighbour_vs_raw_start_p99", "Flooded p99 / that raw p99", "x"),
        Row("noisy_floor_p99_ratio", "Raw start p99, flooded / solo (the floor)", "x"),
    ]


def print_table(numbers: dict[str, float], postgresql: bool, console: Console) -> None:
    title = f"Saassy benchmarks ({'PostgreSQL' if postgresql else 'SQLite'})"
    print_rows(title, rows(postgresql), numbers, console)


def print_rows(title: str, rows: list[Row], numbers: dict[str, float], console: Console) -> None:
    table = Table(title=title)
    for column in ("Measure", "Value", "min - max", "Unit", "Target", ""):
        table.add_column(column, justify="right" if column == "Value" else "left")
    for row in rows:
        if row.key not in numbers:  # measured only where it can be (e.g. two bwrap binaries)
            continue
        met = row.met(numbers[row.key])
        verdict = "" if met is None else ("[green]met[/]" if met else "[red]short[/]")
        low, high = numbers.get(f"{row.key}_min"), numbers.get(f"{row.key}_max")
        spread = "" if low is None or high is None else f"{low:.2f} - {high:.2f}"
        table.add_row(row.label, f"{numbers[row.key]:.2f}", spread, row.unit, row.target, verdict)
    console.print(table)


def write_results(numbers: dict[str, float], path: Path) -> None:
    """A flat JSON object of numbers (NaN and infinities refused: they are not JSON)."""
    bad = [key for key, value in numbers.items() if not math.isfinite(value)]
    if bad:
        raise ValueError(f"not finite: {', '.join(bad)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(numbers.items())), indent=2) + "\n")
