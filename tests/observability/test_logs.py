"""Production logs are JSON lines: each request's carry its id (the client's when well-formed,
echoed back), the supervisor's carry the task and the attempt."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from saassy.context import AppContext
from tests.conftest import TEST_SECRET, TEST_VAULT_KEY, SignUp
from tests.dispatch.conftest import CATALOG
from tests.dispatch.support import insert_tasks
from tests.observability.conftest import METRICS_TOKEN
from tests.processes import StartServer

ROOT = Path(__file__).resolve().parents[2]


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line, parsed: one that is not JSON fails the test."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def logged(log: Path, complete: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """The log's lines once `complete` says so: a request's line is written after its answer."""
    deadline = time.monotonic() + 10
    while not complete(lines := json_lines(log.read_text())) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling for the line, not synchronisation
    return lines


def test_saassy_api_in_production_logs_json_lines_with_request_ids(
    run_server: StartServer, database_url: str, tmp_path: Path
) -> None:
    served = run_server(
        ["api"],
        {
            "SAASSY_ENV": "production",
            "SAASSY_DATABASE_URL": database_url,
            "SAASSY_SECRET_KEY": TEST_SECRET,
            "SAASSY_VAULT_KEYS": TEST_VAULT_KEY,
            "SAASSY_DATA_DIR": str(tmp_path / "data"),
            "SAASSY_RUN_ENGINE": "false",
            "SAASSY_METRICS_TOKEN": METRICS_TOKEN,
        },
        "/ready",
    )
    kept = httpx.get(f"{served.url}/api/v1/plans", headers={"X-Request-ID": "edge-7f3a9c21"})
    assert kept.headers["x-request-id"] == "edge-7f3a9c21"
    replaced = httpx.get(
        f"{served.url}/health?token=not-for-logs", headers={"X-Request-ID": "bad id!"}
    )
    fresh = replaced.headers["x-request-id"]
    assert fresh != "bad id!"
    assert len(fresh) == 32
    missing = httpx.get(f"{served.url}/no/such/{uuid.uuid4()}")
    assert missing.status_code == 404

    ids = {kept.headers["x-request-id"], fresh, missing.headers["x-request-id"]}
    lines = logged(served.log, lambda lines: ids <= {line.get("request_id") for line in lines})
    requests = {line["request_id"]: line for line in lines if line.get("event") == "request"}
    assert requests["edge-7f3a9c21"] | {"duration_ms": 0, "timestamp": ""} == {
        "event": "request",
        "level": "info",
        "method": "GET",
        "route": "/api/v1/plans",
        "path": "/api/v1/plans",
        "status": 200,
        "request_id": "edge-7f3a9c21",
        "duration_ms": 0,
        "timestamp": "",
    }
    assert requests[fresh]["path"] == "/health"
    assert requests[missing.headers["x-request-id"]]["route"] == "unmatched"
    assert "not-for-logs" not in served.log.read_text()
    assert any("Uvicorn running" in line.get("event", "") for line in lines)  # its own, as JSON


async def test_the_supervisors_lines_carry_the_task_and_attempt(
    ctx: AppContext, signup: SignUp, database_url: str, tmp_path: Path
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    ran = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable, "-m", "tests.observability.engine_logs",
            database_url, str(tmp_path / "engine"), str(CATALOG), str(task_id),
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    lines = json_lines(ran.stdout)
    [failed] = [line for line in lines if line["event"] == "sandbox failed to start"]
    assert failed["task_id"] == str(task_id)
    assert failed["attempt"] == 1  # bound for the whole attempt, not passed by this line
    assert failed["level"] == "error"
    assert "no sandbox today" in failed["exception"]
