"""`saassy scheduler` and `saassy worker` as real processes on a real broker (Redis or
RabbitMQ) and PostgreSQL, for the Celery executor's tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import TEST_SECRET, TEST_VAULT_KEY, on_postgresql
from tests.services import REDIS_URL, require

CELERY_CATALOG = Path(__file__).parent / "celery_catalog.toml"
AMQP_URL = os.environ.get("SAASSY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = {"redis": ("Redis", REDIS_URL), "rabbitmq": ("RabbitMQ", AMQP_URL)}
LEASE_S = 3
ROOT = Path(__file__).resolve().parents[2]


def require_broker(kind: str) -> str:
    name, url = BROKERS[kind]
    parts = urlsplit(url)
    require(name, parts.hostname or "127.0.0.1", parts.port or (6379 if kind == "redis" else 5672))
    return url


def require_postgresql() -> None:
    if not on_postgresql():
        pytest.skip("the Celery executor needs PostgreSQL: set SAASSY_TEST_DATABASE_URL")


def cluster_env(database_url: str, broker_url: str, queue: str, data_dir: Path) -> dict[str, str]:
    """The SAASSY_* variables every process of one test's cluster shares."""
    return {
        "SAASSY_ENV": "test",
        "SAASSY_DATABASE_URL": database_url,
        "SAASSY_SECRET_KEY": TEST_SECRET,
        "SAASSY_VAULT_KEYS": TEST_VAULT_KEY,
        "SAASSY_CONFIG": str(CELERY_CATALOG),
        # One host, one data dir: its workers share the work root and the liveness stamps.
        "SAASSY_DATA_DIR": str(data_dir),
        "SAASSY_EXECUTOR": "celery",
        "SAASSY_BROKER_URL": broker_url,
        "SAASSY_BROKER_QUEUE": queue,
        "SAASSY_TASK_LEASE_S": str(LEASE_S),
        "SAASSY_DISPATCH_POLL_S": "0.1",
        "SAASSY_EXECUTOR_PARALLELISM": "8",
        "SAASSY_DATABASE_POOL_SIZE": "4",
    }


def saassy_command(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAASSY_")}
    with log.open("ab") as output:
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "saassy.cli", *args],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**clean, **env, "PYTHONUNBUFFERED": "1"},
        )


@dataclass
class Cluster:
    env: dict[str, str]
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        log = self.logs / f"{args[0]}-{len(self.processes)}.log"
        process = saassy_command(list(args), self.env, log)
        self.processes.append(process)
        return process

    def scheduler(self) -> subprocess.Popen[bytes]:
        return self.start("scheduler")

    def worker(self, concurrency: int = 4) -> subprocess.Popen[bytes]:
        return self.start("worker", "--concurrency", str(concurrency))

    def check_alive(self) -> None:
        for process in self.processes:
            if process.returncode is None and process.poll() is not None:
                pytest.fail(f"a process exited with {process.returncode}:\n{self.all_logs()}")

    def all_logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text()[-4000:]}" for log in sorted(self.logs.glob("*.log"))
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
