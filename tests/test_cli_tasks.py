"""`saassy tasks` against a real `saassy dev` process, with an API key made through the API."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from saassy.cli import app as cli
from saassy.kit.db import create_engine
from saassy.models import Base
from tests.conftest import on_postgresql
from tests.processes import stop_process
from tests.runtime.conftest import require_sandbox

CATALOG = """
default_plan = "free"

[plans.free]
name = "Free"
tasks_per_month = 1000
max_concurrent_tasks = 1
max_task_duration_s = 600
resources = { memory_mb = 512, cpus = 0.5 }
api_rate_limit = "10000/minute"

[task_types.echo]
title = "Echo"
command = ["/usr/bin/python3", "{workers}/echo.py"]
input_schema = { type = "object" }
default_timeout_s = 30
max_timeout_s = 60
resources = { memory_mb = 128, cpus = 0.25, pids = 32, disk_mb = 16 }

[task_types.python]
title = "Python"
command = ["/usr/bin/python3", "-I", "{workers}/python_runner.py"]
default_timeout_s = 30
max_timeout_s = 120
resources = { memory_mb = 256, cpus = 0.5, pids = 64, disk_mb = 64 }
input_schema = { type = "object", required = ["code"], additionalProperties = false, \
properties = { code = { type = "string", minLength = 1 } } }
"""
TERMINAL = {"succeeded", "failed", "timed_out", "canceled"}


@dataclass
class Server:
    url: str
    log: Path  # `saassy dev` prints the e-mails it would send here
    runs_tasks: bool
    serves_output: bool


@dataclass
class Tenant:
    """A signed-up customer's organization and one API key of it."""

    url: str
    key: str

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.key}"})

    def tasks(self, *args: str, input: str | None = None, **env: str | None) -> Result:
        """Run `saassy tasks ...` with this tenant's key from the environment."""
        variables = {"SAASSY_API_URL": self.url, "SAASSY_API_KEY": self.key, **env}
        result = run_cli("tasks", *args, env=variables, input=input)
        assert self.key not in result.output
        return result


def run_cli(*args: str, env: dict[str, str | None], input: str | None = None) -> Result:
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SAASSY_")}
    clean.update({"COLUMNS": "200", **env})
    return CliRunner().invoke(cli, list(args), env=clean, input=input, catch_exceptions=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _truncate(url: str) -> None:
    async def truncate() -> None:
        engine = create_engine(url)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        async with engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
        await engine.dispose()

    asyncio.run(truncate())


def verification_token(log: Path, email: str) -> str:
    """The link in the verification e-mail `saassy dev` printed for `email` (sent shortly after
    the sign-up commits)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        at = text.rfind(f"To: {email}")
        found = re.search(r"/verify-email\?token=([A-Za-z0-9_-]+)", text[at:]) if at >= 0 else None
        if found:
            return found.group(1)
        time.sleep(0.1)  # polling the log the server writes, nothing to wait on
    pytest.fail(f"no verification e-mail to {email} in {log}")


def sign_up(url: str, log: Path) -> Tenant:
    """A verified customer (unverified ones may not create API keys) with one API key."""
    email = f"cli-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=url) as http:
        signup = http.post(
            "/api/v1/auth/signup", json={"email": email, "password": "correct horse battery"}
        )
        assert signup.status_code == 201, signup.text
        token = signup.json()["access_token"]
        verified = http.post(
            "/api/v1/auth/verify-email", json={"token": verification_token(log, email)}
        )
        assert verified.status_code == 204, verified.text
        created = http.post(
            "/api/v1/api-keys",
            json={"name": "cli tests"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201, created.text
    return Tenant(url, created.json()["key"])


def _probe(url: str, log: Path) -> tuple[bool, bool]:
    """Can a task reach its end here, and are the log endpoints served?"""
    tenant = sign_up(url, log)
    with tenant.http() as http:
        task_id = http.post("/api/v1/tasks", json={"type": "echo", "input": {}}).json()["id"]
        serves_output = http.get(f"/api/v1/tasks/{task_id}/logs").status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if http.get(f"/api/v1/tasks/{task_id}").json()["status"] in TERMINAL:
                return True, serves_output
            time.sleep(0.2)  # polling the API for the probe, nothing to wait on
    return False, serves_output


@pytest.fixture(scope="module")
def server(migrated_template: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`saassy dev` as a real process on a free port, with the test catalog and its own data."""
    require_sandbox()  # else /ready answers 503 and the server is never ready
    directory = tmp_path_factory.mktemp("cli-tasks")
    catalog = directory / "saassy.toml"
    catalog.write_text(CATALOG, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAASSY_")}
    if on_postgresql():
        env["SAASSY_DATABASE_URL"] = migrated_template  # else SQLite in the data dir
    process, url, log = _start_dev(directory, catalog, env)
    try:
        yield Server(url, log, *_probe(url, log))
    finally:
        stop_process(process)
        if on_postgresql():
            _truncate(migrated_template)


def _start_dev(
    directory: Path, catalog: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`saassy dev` on a free port, ready; again on another port if one was taken meanwhile
    (a port found free can be bound by someone else before the server binds it)."""
    for attempt in range(3):
        port = free_port()
        log = directory / f"dev-{attempt}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "saassy.cli", "dev", "--port", str(port),
                 "--data-dir", str(directory / "data"), "--config", str(catalog)],
                cwd=directory, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=out, stderr=out,
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        # Ours answering, not another server that took the port: its log says it started.
        while not ("Uvicorn running on" in log.read_text() and _ready(url)):
            if process.poll() is not None:
                if "address already in use" in log.read_text():
                    break
                pytest.fail(f"saassy dev exited with {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"saassy dev was not ready within 60 s:\n{log.read_text()}")
            time.sleep(0.1)  # polling for readiness, not synchronisation
        else:
            return process, url, log
    pytest.fail("saassy dev found its port taken three times")


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(autouse=True)
def no_stored_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own `saassy login` never reaches the tests, nor theirs the user's."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


@pytest.fixture
def tenant(server: Server) -> Tenant:
    return sign_up(server.url, server.log)


@pytest.fixture
def engine_tenant(server: Server, tenant: Tenant) -> Tenant:
    """A tenant on a server whose tasks run to the end (required in CI)."""
    if not (server.runs_tasks and server.serves_output):
        missing = "tasks never end" if not server.runs_tasks else "no log endpoints"
        if os.environ.get("CI"):
            pytest.fail(f"the task engine is not wired into the app ({missing})")
        pytest.skip(f"the task engine is not wired into the app yet ({missing})")
    return tenant


def submitted(result: Result) -> dict[str, object]:
    assert result.exit_code == 0, result.output
    task: dict[str, object] = json.loads(result.stdout)
    return task


# --- submit, list, show, cancel --------------------------------------------------------------


def test_submit_json_prints_the_queued_task(tenant: Tenant) -> None:
    task = submitted(tenant.tasks("submit", "echo", "--input", '{"n": 1}', "-o", "json"))
    assert task["status"] == "queued"
    assert task["input"] == {"n": 1}
    with tenant.http() as http:
        stored = http.get(f"/api/v1/tasks/{uuid.UUID(str(task['id']))}")
    assert stored.status_code == 200
    assert stored.json()["type"] == "echo"


def test_submit_passes_timeout_priority_and_idempotency_key(tenant: Tenant) -> None:
    args = ("submit", "echo", "--timeout", "7", "--priority", "5", "--idempotency-key", "k-1")
    first = submitted(tenant.tasks(*args, "-o", "json"))
    again = submitted(tenant.tasks(*args, "-o", "json"))
    assert (first["timeout_s"], first["priority"]) == (7, 5)
    assert again["id"] == first["id"]

    other = tenant.tasks("submit", "echo", "--input", '{"other": 1}', "--idempotency-key", "k-1")
    assert other.exit_code == 1
    assert "error: idempotency_key_reused:" in other.output


def test_submit_without_json_says_what_was_queued(tenant: Tenant) -> None:
    result = tenant.tasks("submit", "echo")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("queued task ")
    task_id = uuid.UUID(result.stdout.split()[2])
    assert f"saassy tasks logs {task_id} --follow" in result.stderr


def test_input_comes_from_a_file_or_standard_input(tenant: Tenant, tmp_path: Path) -> None:
    path = tmp_path / "input.json"
    path.write_text('{"from": "file", "list": [1, 2]}', encoding="utf-8")
    from_file = submitted(tenant.tasks("submit", "echo", "--input", f"@{path}", "-o", "json"))
    assert from_file["input"] == {"from": "file", "list": [1, 2]}

    from_stdin = submitted(
        tenant.tasks("submit", "echo", "--input", "-", "-o", "json", input='{"from": "stdin"}')
    )
    assert from_stdin["input"] == {"from": "stdin"}

    missing = tenant.tasks("submit", "echo", "--input", f"@{tmp_path / 'nope.json'}")
    assert missing.exit_code == 1
    assert "cannot read the input file" in missing.output


def test_list_shows_the_tasks_and_filters_them(tenant: Tenant) -> None:
    echo = submitted(tenant.tasks("submit", "echo", "-o", "json"))
    python = submitted(tenant.tasks("submit", "python", "--input", '{"code": "1"}', "-o", "json"))

    table = tenant.tasks("list")
    assert table.exit_code == 0, table.output
    assert str(echo["id"]) in table.stdout
    assert str(python["id"]) in table.stdout
    assert "STATUS" in table.stdout

    only_python = json.loads(tenant.tasks("list", "--type", "python", "-o", "json").stdout)
    assert [t["id"] for t in only_python["items"]] == [python["id"]]

    one = json.loads(tenant.tasks("list", "--limit", "1", "-o", "json").stdout)
    assert [t["id"] for t in one["items"]] == [python["id"]]  # newest first
    assert one["next_cursor"]
    rest = json.loads(tenant.tasks("list", "--cursor", one["next_cursor"], "-o", "json").stdout)
    assert [t["id"] for t in rest["items"]] == [echo["id"]]

    bad_status = tenant.tasks("list", "--status", "sleeping")
    assert bad_status.exit_code == 2


def test_show_prints_a_panel_or_the_json(tenant: Tenant) -> None:
    task = submitted(tenant.tasks("submit", "echo", "--input", '{"shown": true}', "-o", "json"))
    panel = tenant.tasks("show", str(task["id"]))
    assert panel.exit_code == 0, panel.output
    for expected in (f"task {task['id']}", "echo", "attempts", "usage", '{"shown": true}'):
        assert expected in panel.stdout

    as_json = json.loads(tenant.tasks("show", str(task["id"]), "-o", "json").stdout)
    assert (as_json["id"], as_json["type"], as_json["input"]) == (
        task["id"],
        "echo",
        {"shown": True},
    )
    assert set(as_json) >= {"status", "attempts", "result", "error", "usage"}


def test_show_of_an_unknown_or_malformed_id_is_a_clean_error(tenant: Tenant) -> None:
    unknown = tenant.tasks("show", str(uuid.uuid4()))
    assert unknown.exit_code == 1
    assert "error: not_found: Task not found." in unknown.output
    malformed = tenant.tasks("show", "../admin")
    assert malformed.exit_code == 1
    assert "not a task id: '../admin'" in malformed.output
    assert "Traceback" not in unknown.output + malformed.output


def test_cancel_a_queued_task_then_an_ended_one(tenant: Tenant) -> None:
    # The plan runs one task at a time: the sleeper holds the slot, so the echo stays queued.
    sleeper = submitted(
        tenant.tasks(
            "submit", "python", "--priority", "100", "-o", "json",
            "--input", '{"code": "import time; time.sleep(60)"}',
        )
    )  # fmt: skip
    queued = submitted(tenant.tasks("submit", "echo", "--priority", "-100", "-o", "json"))

    canceled = tenant.tasks("cancel", str(queued["id"]))
    assert canceled.exit_code == 0, canceled.output
    assert canceled.stdout.strip() == f"canceled task {queued['id']}"
    assert json.loads(tenant.tasks("show", str(queued["id"]), "-o", "json").stdout)["status"] == (
        "canceled"
    )

    again = tenant.tasks("cancel", str(queued["id"]))
    assert again.exit_code == 1
    assert "error: task_finished: The task already ended (canceled)" in again.output

    stopping = tenant.tasks("cancel", str(sleeper["id"]), "-o", "json")
    assert stopping.exit_code == 0, stopping.output
    assert json.loads(stopping.stdout)["cancel_requested_at"] or (
        json.loads(stopping.stdout)["status"] == "canceled"
    )


def test_help_names_the_exit_codes_and_never_shows_the_key() -> None:
    key = "sk_" + uuid.uuid4().hex
    overview = run_cli("tasks", "--help", env={"SAASSY_API_KEY": key})
    assert overview.exit_code == 0
    assert "3 the task failed, 4 it timed out, 5 it was canceled" in " ".join(
        overview.output.split()
    )
    for command in ("submit", "list", "show", "logs", "cancel"):
        result = run_cli("tasks", command, "--help", env={"SAASSY_API_KEY": key})
        assert result.exit_code == 0, result.output
        assert "SAASSY_API_KEY" in result.output
        assert key not in result.output


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["python", "--input", "{}"], "error: invalid_input: "),
        (["python", "--input", '{"code": 3}'], "input.code"),
        (["nope"], "error: unknown_task_type: type: there is no task type 'nope'"),
        (["echo", "--timeout", "999"], "error: timeout_too_long: timeout_s: 999 s"),
        (["echo", "--input", "{oops"], "error: --input is not valid JSON: "),
        (["echo", "--input", "-"], "error: standard input is not valid JSON: "),
    ],
)
def test_bad_input_exits_1_with_the_error_code(
    tenant: Tenant, args: list[str], expected: str
) -> None:
    result = tenant.tasks("submit", *args, input="")
    assert result.exit_code == 1
    assert expected in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_a_missing_api_key_is_explained(server: Server) -> None:
    result = run_cli("tasks", "list", env={"SAASSY_API_URL": server.url})
    assert result.exit_code == 1
    assert "run `saassy login`, or pass --api-key or set SAASSY_API_KEY" in result.output


def test_a_wrong_api_key_is_refused_without_being_printed(server: Server) -> None:
    key = "sk_" + uuid.uuid4().hex
    result = run_cli("tasks", "list", "--api-key", key, env={"SAASSY_API_URL": server.url})
    assert result.exit_code == 1
    assert "error: invalid_api_key: " in result.output
    assert "check --api-key or SAASSY_API_KEY" in result.output
    assert key not in result.output

    malformed = run_cli("tasks", "list", "--api-key", "sk_ wrong\u00e9", env={})
    assert malformed.exit_code == 1
    assert "the API key is malformed" in malformed.output
    assert "wrong" not in malformed.output


def test_an_unreachable_api_is_a_clean_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli("tasks", "list", env={"SAASSY_API_URL": url, "SAASSY_API_KEY": "sk_x"})
    assert result.exit_code == 1
    assert f"error: cannot reach the API at {url}" in result.output
    assert "sk_x" not in result.output
    assert "Traceback" not in result.output


# --- waiting and following (the engine must run tasks) ---------------------------------------


def test_wait_ends_with_the_result_and_exit_0(engine_tenant: Tenant) -> None:
    result = engine_tenant.tasks(
        "submit", "echo", "--input", '{"x": [1, 2]}', "--wait", "-o", "json"
    )
    task = submitted(result)
    assert task["status"] == "succeeded"
    assert task["result"] == {"x": [1, 2]}

    panel = engine_tenant.tasks("submit", "echo", "--input", '{"y": 1}', "--wait")
    assert panel.exit_code == 0, panel.output
    assert "succeeded" in panel.stdout
    assert '"y": 1' in panel.stdout


def test_follow_streams_the_logs_and_exits_as_the_task_ended(engine_tenant: Tenant) -> None:
    code = 'print("hello from the sandbox", flush=True); raise SystemExit(3)'
    result = engine_tenant.tasks(
        "submit", "python", "--input", json.dumps({"code": code}), "--follow"
    )
    assert result.exit_code == 3, result.output
    assert "hello from the sandbox" in result.stdout
    assert "failed" in result.stdout

    task_id = result.stderr.split()[2]
    logs = engine_tenant.tasks("logs", task_id)
    assert logs.exit_code == 0, logs.output
    assert "hello from the sandbox" in logs.stdout

    followed = engine_tenant.tasks("logs", task_id, "--follow")
    assert followed.exit_code == 3
    assert "hello from the sandbox" in followed.stdout
    assert f"task {task_id} failed" in followed.stderr


def test_follow_with_json_keeps_stdout_for_the_task(engine_tenant: Tenant) -> None:
    code = 'print("to stderr in json mode")'
    result = engine_tenant.tasks(
        "submit", "python", "--input", json.dumps({"code": code}), "--follow", "-o", "json"
    )
    task = submitted(result)
    assert task["status"] == "succeeded"
    assert "to stderr in json mode" in result.stderr


def test_logs_of_a_task_print_plain_text(server: Server, tenant: Tenant) -> None:
    if not server.serves_output:
        if os.environ.get("CI"):
            pytest.fail("GET /api/v1/tasks/{id}/logs is not served")
        pytest.skip("GET /api/v1/tasks/{id}/logs is not served yet")
    task = submitted(tenant.tasks("submit", "echo", "-o", "json"))
    result = tenant.tasks("logs", str(task["id"]))
    assert result.exit_code == 0, result.output
