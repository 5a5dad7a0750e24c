"""Several processes, one scrape: with `PROMETHEUS_MULTIPROC_DIR`, what each process observed
is summed, and the gauge of a process that stopped is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET, TEST_VAULT_KEY
from tests.observability.conftest import METRICS_TOKEN, value
from tests.processes import StartServer

OBSERVE = """
from saassy.observability import metrics, exposition
metrics.attempt_ended("noop", "succeeded", 1.5)
metrics.supervising(+1)
if {forget}:
    exposition.forget_process()
"""


def observe_in_a_process(directory: Path, *, forget: bool) -> None:
    subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", OBSERVE.format(forget=forget)],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)},
        check=True,
    )


async def test_a_scrape_sums_the_processes(
    client: httpx.AsyncClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    observe_in_a_process(directory, forget=False)  # killed: never said it stopped
    observe_in_a_process(directory, forget=True)  # stopped as the app's lifespan does
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    text = (await client.get("/metrics")).text
    succeeded = {"task_type": "noop", "outcome": "succeeded"}
    assert value(text, "saassy_attempts_total", **succeeded) == 2
    assert value(text, "saassy_task_duration_seconds_sum", **succeeded) == 3.0
    # livesum: only the process that did not say it stopped still counts.
    assert value(text, "saassy_running_attempts") == 1
    assert value(text, "saassy_database_up") == 1  # the database's numbers come on top


def test_saassy_api_with_two_workers_counts_every_request(
    run_server: StartServer,
    database_url: str,
    tmp_path: Path,
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    served = run_server(
        ["api", "--workers", "2"],
        {
            "SAASSY_ENV": "test",
            "SAASSY_DATABASE_URL": database_url,
            "SAASSY_SECRET_KEY": TEST_SECRET,
            "SAASSY_VAULT_KEYS": TEST_VAULT_KEY,
            "SAASSY_DATA_DIR": str(tmp_path / "data"),
            "SAASSY_RUN_ENGINE": "false",
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
        },
        "/ready",
    )
    for _ in range(40):  # a new connection each: either worker may take it
        assert httpx.get(f"{served.url}/health").status_code == 200
    health = {"method": "GET", "route": "/health", "status": "200"}
    for _ in range(4):  # whichever worker answers the scrape, it reports both
        text = httpx.get(f"{served.url}/metrics").text
        assert value(text, "saassy_http_requests_total", **health) == 40


def test_several_workers_without_the_shared_directory_are_refused(
    database_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAASSY_", "PROMETHEUS_"))}
    env |= {
        "SAASSY_ENV": "test",
        "SAASSY_DATABASE_URL": database_url,
        "SAASSY_SECRET_KEY": TEST_SECRET,
        "SAASSY_VAULT_KEYS": TEST_VAULT_KEY,
        "SAASSY_DATA_DIR": str(tmp_path / "data"),
    }
    ran = subprocess.run(
        [sys.executable, "-m", "saassy.cli", "api", "--workers", "2", "--port", "9"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode != 0
    assert "2 workers serve /metrics: set PROMETHEUS_MULTIPROC_DIR" in ran.stderr + ran.stdout


def test_saassy_metrics_reports_what_the_hosts_other_processes_observed(
    run_server: StartServer, database_url: str, tmp_path: Path
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    observe_in_a_process(directory, forget=True)  # a worker of this host, say
    served = run_server(
        ["metrics"],
        {
            "SAASSY_ENV": "production",
            "SAASSY_DATABASE_URL": database_url,
            "SAASSY_SECRET_KEY": TEST_SECRET,
            "SAASSY_VAULT_KEYS": TEST_VAULT_KEY,
            "SAASSY_METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(directory),
        },
        "/ready",
    )
    assert httpx.get(f"{served.url}/metrics").status_code == 401
    authorized = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    text = httpx.get(f"{served.url}/metrics", headers=authorized).text
    succeeded = {"task_type": "noop", "outcome": "succeeded"}
    assert value(text, "saassy_attempts_total", **succeeded) == 1
    assert value(text, "saassy_database_up") == 1


def test_saassy_metrics_without_the_shared_directory_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAASSY_", "PROMETHEUS_"))}
    env |= {"SAASSY_DATA_DIR": str(tmp_path / "data")}
    ran = subprocess.run(
        [sys.executable, "-m", "saassy.cli", "metrics", "--port", "9"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode != 0
    assert "set PROMETHEUS_MULTIPROC_DIR to the directory they share" in ran.stderr + ran.stdout
