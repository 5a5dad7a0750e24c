"""Celery + Redis doing the same work: a prefork worker subprocess, results stored in Redis.

Two workers, each on a queue of its own for this run (deleted afterwards: the Redis DB is shared,
never flushed): the peer a user would pick (bench/celery_bwrap.py, the
echo program in a plain bwrap command line) and Celery around Saassy's own runtime
(bench/celery_worker.py), which compares the engines alone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from celery import Celery  # type: ignore[import-untyped]
from celery.result import ResultSet  # type: ignore[import-untyped]
from kombu import Connection  # type: ignore[import-untyped]

from bench.client import BenchError
from bench.echo import ECHO_INPUT, started_at
from bench.machine import MachineCpu


@dataclass(frozen=True)
class Peer:
    module: str
    task: str


PLAIN_BWRAP = Peer("bench.celery_bwrap", "bench.echo_in_bwrap")
SAME_RUNTIME = Peer("bench.celery_worker", "bench.echo_in_runtime")


class CeleryWorker:
    """A `celery worker` subprocess for one peer; `throughput(n)` sends it n echo tasks."""

    def __init__(
        self, peer: Peer, parallelism: int, redis_url: str, log: Path, bwrap: str | None = None
    ) -> None:
        self.peer, self.parallelism, self.log = peer, parallelism, log
        self.redis_url = redis_url
        self.queue = f"saassy-bench-{peer.task.rpartition('.')[2]}-{uuid.uuid4().hex[:10]}"
        self.env = {**os.environ, "SAASSY_BENCH_REDIS_URL": redis_url}
        if bwrap:
            self.env["SAASSY_BENCH_BWRAP"] = bwrap
        self.client = Celery("saassy_bench_client", broker=redis_url, backend=redis_url)
        self.client.conf.update(
            task_serializer="json", result_serializer="json", accept_content=["json"]
        )
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> CeleryWorker:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [
                    sys.executable, "-m", "celery", "-A", self.peer.module, "worker",
                    "--pool", "prefork", "--concurrency", str(self.parallelism),
                    "--queues", self.queue, "--loglevel", "INFO",
                    "--without-gossip", "--without-mingle",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        return self

    def warm(self) -> None:
        """Once it consumes: every pool process has run a task (workers may boot side by side)."""
        self.batch(2 * self.parallelism, timeout_s=60)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with Connection(self.redis_url) as connection:
            connection.default_channel.queue_delete(self.queue)

    def batch(self, count: int, timeout_s: float) -> list[dict[str, Any]]:
        sent = [
            self.client.send_task(self.peer.task, args=[ECHO_INPUT], queue=self.queue)
            for _ in range(count)
        ]
        pending = ResultSet(sent)
        results: list[dict[str, Any]] = pending.get(timeout=timeout_s)
        pending.forget()  # the stored results: the Redis DB is shared
        failed = [r for r in results if r["exit_code"] != 0 or r["result"] is None]
        if failed:
            raise BenchError(f"{len(failed)} of {count} {self.peer.task} failed: {failed[0]}")
        return results

    def submit_to_running(self, samples: int, timeout_s: float = 60) -> list[float]:
        """One task at a time (the next after the last's result is read): seconds from
        `send_task` returning (the message is with the broker) to the echo program's first
        instruction, as Saassy's submit->running counts from its 202."""
        waits = []
        for _ in range(samples):
            sent = self.client.send_task(self.peer.task, args=[ECHO_INPUT], queue=self.queue)
            began = time.monotonic()
            done: dict[str, Any] = sent.get(timeout=timeout_s)
            sent.forget()  # the stored result: the Redis DB is shared
            if done["exit_code"] != 0 or done["result"] is None:
                raise BenchError(f"{self.peer.task} failed: {done}")
            waits.append(started_at(done["result"])[0] - began)
        return waits

    def throughput(self, count: int) -> dict[str, float]:
        """Tasks per second from the first send to the last result read back, and the whole
        machine's CPU per task meanwhile."""
        with MachineCpu() as cpu:
            started = time.perf_counter()
            self.batch(count, timeout_s=60 + count / 5)
            ended = time.perf_counter()
        return {"tasks_per_s": count / (ended - started), "machine_cpu_ms": cpu.ms_per(count)}


def run_celery(count: int, parallelism: int, redis_url: str, logs: Path) -> dict[str, float]:
    """The peer alone, once: `celery_throughput_tasks_per_s`."""
    with CeleryWorker(PLAIN_BWRAP, parallelism, redis_url, logs / "celery-bwrap.log") as worker:
        worker.warm()
        measured = worker.throughput(count)
    return {
        "celery_throughput_tasks_per_s": measured["tasks_per_s"],
        "celery_machine_cpu_ms_per_task": measured["machine_cpu_ms"],
    }
