"""`python -m bench` end to end with tiny counts: every key is there and is a number.

Only the shape of the output is checked, never a timing: the numbers come from `make bench`.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from saassy.runtime.process import ProcessRuntime
from tests.runtime.conftest import require_isolation
from tests.runtime.docker_support import docker_runtime
from tests.services import REDIS_URL, require

ROOT = Path(__file__).resolve().parents[2]
EGRESS_KEYS = {
    "egress_latency_ratio",
    "egress_latency_ratio_spread",
    "egress_added_ms",
    "egress_proxy_mb_s",
    "egress_throughput_ratio",
    "egress_throughput_ratio_spread",
}
LOG_KEYS = {
    "logs_server_vs_billed",
    "logs_server_vs_billed_spread",
    "logs_server_vs_floor",
    "logs_server_ms_per_mib_printed",
    "logs_server_ms_per_mib_kept",
}
SCALE_KEYS = {
    "celery_executor_throughput_tasks_per_s",
    "celery_executor_vs_celery",
    *(f"celery_executor_2w_{key}" for key in (
        "throughput_tasks_per_s", "submit_to_running_p50_ms", "submit_to_running_p99_ms"
    )),
    "claim_shallow_p99_ms",
    "claim_deep_p99_ms",
    "claim_deep_vs_shallow_p50",
    "claim_plan_seq_scans",
    "docker_overhead_ratio",
    "docker_overhead_ratio_min",
    "docker_overhead_ratio_max",
}  # fmt: skip
# Measured in repetitions: each with its median, `_min` and `_max`.
HEADLINE_KEYS = {
    "throughput_vs_floor",
    "throughput_vs_celery",
    "throughput_vs_celery_same_runtime",
    "submit_to_running_p50_ms",
    "submit_to_running_p99_ms",
    "submit_to_running_above_sandbox_p50_ms",
    "submit_to_running_above_sandbox_p99_ms",
    "noisy_neighbour_p99_ratio",
    "noisy_neighbour_busy_p99_ratio",
    "noisy_neighbour_vs_raw_start_p99",
    "noisy_floor_p99_ratio",
    "live_log_added_p99_ms",
}
REQUIRED_KEYS = {
    *HEADLINE_KEYS,
    *(f"{key}_{end}" for key in HEADLINE_KEYS for end in ("min", "max")),
    "repetitions",
    "throughput_tasks_per_s",
    "celery_throughput_tasks_per_s",
    "celery_same_runtime_throughput_tasks_per_s",
    "floor_throughput_tasks_per_s",
    "server_cpu_ms_per_task",
    "machine_cpu_ms_per_task",
    "client_cpu_ms_per_task",
    "celery_machine_cpu_ms_per_task",
    "floor_machine_cpu_ms_per_task",
    "sandbox_start_to_program_p50_ms",
    "celery_submit_to_running_p50_ms",
    "celery_submit_to_running_p99_ms",
    "celery_submit_to_running_above_sandbox_p50_ms",
    "celery_submit_to_running_above_sandbox_p99_ms",
    "runtime_overhead_ms",
    *EGRESS_KEYS,
    *LOG_KEYS,
    *SCALE_KEYS,
    "meter_events_per_s",
    "meter_events_vs_stripe_limit",
    "meter_events_vs_floor",
    "meter_events_reconcile_s",
    "submit_api_vs_bare",
    "submit_api_vs_durable",
    "durable_vs_bare",
    "submit_api_per_s",
    "bare_submit_per_s",
    "durable_submit_per_s",
}


# With the system's bwrap beside the bundled one, the two are compared.
BOTH_BINARIES = {"runtime_overhead_bundled_ms", "bundled_vs_system_start"}


@pytest.mark.timeout(480)  # every phase once (the Celery executor: one cluster of two workers)
def test_quick_bench_writes_every_number(tmp_path: Path) -> None:
    redis = urlparse(REDIS_URL)
    require("Redis", redis.hostname or "127.0.0.1", redis.port or 6379)
    require_isolation(ProcessRuntime())
    require("PostgreSQL", "127.0.0.1", 5432)  # the Celery executor's and the claim's phases
    docker_runtime().close()  # the docker runtime's phase: dockerd and saassy/base:test
    out = tmp_path / "latest.json"
    command = [
        sys.executable, "-m", "bench", "--quick", "--repetitions", "1", "--tasks", "12",
        "--latency-samples", "5",
        "--noisy-queued", "1000", "--overhead-samples", "3", "--parallelism", "4",
        "--scale-tasks", "8", "--scale-workers", "2", "--claim-deep", "3000", "--claim-rounds", "2",
        "--docker-repetitions", "3", "--log-mib", "32", "--log-runs", "1", "--meter-rows", "400",
        "--meter-runs", "1", "--meter-hours", "1", "--redis-url", REDIS_URL,
        "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        command, cwd=ROOT, capture_output=True, text=True, timeout=420, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    numbers = json.loads(out.read_text())
    assert numbers["claim_deep_queued"] == 3000
    assert numbers["logs_printed_mib"] > 30  # --log-mib 32
    required = REQUIRED_KEYS | (BOTH_BINARIES if shutil.which("bwrap") else set())
    assert set(numbers) >= required, required - set(numbers)
    for key, value in numbers.items():
        assert isinstance(value, int | float), key
        assert not isinstance(value, bool), key
        assert math.isfinite(value), key
    assert numbers["tasks"] == 12
    assert numbers["repetitions"] == 1
    assert "Saassy benchmarks" in done.stdout


def test_quick_egress_bench_writes_every_number(tmp_path: Path) -> None:
    out = tmp_path / "egress.json"
    command = [sys.executable, "-m", "bench.egress", "--quick", "--out", str(out)]
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    numbers = json.loads(out.read_text())
    assert set(numbers) >= EGRESS_KEYS, EGRESS_KEYS - set(numbers)
    assert all(math.isfinite(value) for value in numbers.values())
    assert numbers["egress_runs"] == 3
    assert numbers["egress_metered_bytes_in"] > 0
    assert "egress_metered_vs_received" in numbers
    assert "Egress proxy vs direct" in done.stdout


@pytest.mark.parametrize("argv", [["--help"]])
def test_bench_describes_its_options(argv: list[str]) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "bench", *argv], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "--quick" in done.stdout
