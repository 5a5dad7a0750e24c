"""Celery + Redis doing the same work: a prefork worker subprocess, results stored in Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
from celery.result import ResultSet  # type: ignore[import-untyped]

from bench.client import BenchError


def run_celery(count: int, parallelism: int, redis_url: str, logs: Path) -> dict[str, float]:
    """Tasks per second, from the first `delay()` to the last result read back."""
    redis.Redis.from_url(redis_url).flushdb()  # our own DB number only: a clean queue
    env = {**os.environ, "SAASSY_BENCH_REDIS_URL": redis_url}
    os.environ["SAASSY_BENCH_REDIS_URL"] = redis_url
    from bench.celery_worker import noop_sandbox

    with (logs / "celery-worker.log").open("ab") as log:
        worker = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable, "-m", "celery", "-A", "bench.celery_worker", "worker",
                "--pool", "prefork", "--concurrency", str(parallelism),
                "--loglevel", "INFO", "--without-gossip", "--without-mingle",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        warm = ResultSet([noop_sandbox.delay() for _ in range(2 * parallelism)])
        codes = warm.get(timeout=60)
        if any(codes):
            raise BenchError(f"celery's no-op sandboxes failed: {codes}")
        started = time.perf_counter()
        results = ResultSet([noop_sandbox.delay() for _ in range(count)])
        codes = results.get(timeout=60 + count / 5)
        ended = time.perf_counter()
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    failed = sum(1 for code in codes if code != 0)
    if failed:
        raise BenchError(f"{failed} of {count} celery no-op sandboxes failed")
    return {"celery_throughput_tasks_per_s": count / (ended - started)}
