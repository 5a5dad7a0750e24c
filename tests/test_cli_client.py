"""The client commands (login, api-keys, plans, task-types, usage, secrets, schedules,
webhooks, artifacts, rerun)
against a real `saassy dev` process, and the weight of importing them."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import Result

from saassy.cli import credentials
from saassy.cli.task_artifacts import safe_relative
from tests import test_cli_tasks
from tests.test_cli_tasks import Server, Tenant, free_port, run_cli

# The task commands' fixtures: one `saassy dev` per module, a tenant with an API key.
server = test_cli_tasks.server
tenant = test_cli_tasks.tenant
engine_tenant = test_cli_tasks.engine_tenant

PASSWORD = "correct horse battery"
CLIENT_MODULES = [
    "saassy.cli",
    "saassy.cli.api_keys",
    "saassy.cli.catalog",
    "saassy.cli.client",
    "saassy.cli.connect",
    "saassy.cli.credentials",
    "saassy.cli.login",
    "saassy.cli.schedules",
    "saassy.cli.secrets",
    "saassy.cli.task_artifacts",
    "saassy.cli.task_follow",
    "saassy.cli.task_views",
    "saassy.cli.tasks",
    "saassy.cli.webhooks",
]
HEAVY = ("saassy.app", "saassy.models", "saassy.config", "sqlalchemy", "alembic", "fastapi")


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test logs in to its own config dir, never the user's."""
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home / "saassy"


def saassy(*args: str, input: str | None = None, **env: str | None) -> Result:
    """`saassy ...` with no SAASSY_* variable but those given: the stored login decides."""
    return run_cli(*args, env=dict(env), input=input)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def logged_in(server: Server) -> tuple[str, str]:
    """A new user, logged in with e-mail and password: (e-mail, organization id)."""
    email = f"login-{uuid.uuid4().hex[:10]}@example.com"
    signup = httpx.post(
        f"{server.url}/api/v1/auth/signup", json={"email": email, "password": PASSWORD}
    )
    assert signup.status_code == 201, signup.text
    # Verified, as API keys need (the link is in the e-mail `saassy dev` printed).
    token = test_cli_tasks.verification_token(server.log, email)
    verified = httpx.post(f"{server.url}/api/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 204, verified.text
    ok(
        saassy(
            "login", "--api-url", server.url, "--email", email, "--password-stdin",
            input=PASSWORD + "\n",
        )
    )  # fmt: skip
    return email, signup.json()["organization"]["id"]


def stored() -> dict[str, object]:
    data: dict[str, object] = json.loads(credentials.credentials_path().read_text())
    return data


# --- import weight -----------------------------------------------------------------------------


def test_client_commands_import_neither_the_app_nor_the_database() -> None:
    code = (
        "import json, sys\n"
        + "".join(f"import {module}\n" for module in CLIENT_MODULES)
        + "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = json.loads(
        subprocess.run(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout
    )
    heavy = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == []


def test_running_a_client_command_loads_no_server_module_and_no_pydantic() -> None:
    # Typer 0.29 coerces every parameter through pydantic (~100 ms per command): pinned below it.
    code = (
        "import json, sys\n"
        "from saassy.cli import app\n"
        "try:\n"
        f"    app(['plans', '-o', 'json', '--api-url', 'http://127.0.0.1:{free_port()}'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    ran = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    assert "cannot reach the API" in ran.stderr  # the command ran, up to the network
    loaded = json.loads(ran.stdout)
    slow = [m for m in loaded if any(m == h or m.startswith(h + ".") for h in (*HEAVY, "pydantic"))]
    assert slow == []


def test_the_client_copies_agree_with_the_server() -> None:
    from saassy.cli.schedules import CatchUp as ClientCatchUp
    from saassy.cli.secrets import SECRET_NAME
    from saassy.cli.task_status import TaskStatus as ClientStatus
    from saassy.cli.vault import BATCH_SIZE
    from saassy.cli.webhooks import EventType as ClientEventType
    from saassy.models import CatchUp, TaskStatus
    from saassy.tasks.catalog import SECRET_NAME_PATTERN
    from saassy.vault.rotation import BATCH_SIZE as ROTATION_BATCH_SIZE
    from saassy.webhooks.events import WebhookEventType

    assert {(s.value, s.terminal) for s in ClientStatus} == {
        (s.value, s.terminal) for s in TaskStatus
    }
    assert f"^{SECRET_NAME.pattern}$" == SECRET_NAME_PATTERN
    assert BATCH_SIZE == ROTATION_BATCH_SIZE
    assert {c.value for c in ClientCatchUp} == {c.value for c in CatchUp}
    assert {e.value for e in ClientEventType} == {e.value for e in WebhookEventType}


# --- login, logout -----------------------------------------------------------------------------


def test_login_stores_the_session_for_the_user_only(server: Server, config_home: Path) -> None:
    email, _ = logged_in(server)
    path = config_home / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_home.stat().st_mode) == 0o700
    saved = stored()
    assert (saved["api_url"], saved["kind"], saved["email"]) == (server.url, "session", email)
    assert saved["access_token"]
    assert saved["refresh_token"]
    assert [p.name for p in config_home.iterdir() if p.name.startswith(".credentials")] == []

    usage = json.loads(ok(saassy("usage", "-o", "json")).stdout)  # no URL, no key: the login's
    assert usage["plan"]["key"] == "free"


def test_a_wrong_password_stores_nothing(server: Server, config_home: Path) -> None:
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    result = saassy(
        "login", "--api-url", server.url, "--email", email, "--password-stdin", input="wrong\n"
    )
    assert result.exit_code == 1
    assert "error: invalid_credentials" in result.stderr
    assert not (config_home / "credentials.json").exists()


def test_a_credentials_file_others_can_read_is_refused(server: Server) -> None:
    logged_in(server)
    credentials.credentials_path().chmod(0o644)
    result = saassy("usage")
    assert result.exit_code == 1
    assert "can be read by other users" in result.stderr


def test_an_expired_or_refused_access_token_is_refreshed_and_the_new_pair_saved(
    server: Server,
) -> None:
    logged_in(server)
    first = stored()
    credentials.save(credentials.Credentials(**{**first, "expires_at": 0}))  # type: ignore[arg-type]
    ok(saassy("usage"))
    second = stored()
    assert second["refresh_token"] != first["refresh_token"]
    assert float(second["expires_at"]) > 0  # type: ignore[arg-type]

    credentials.save(credentials.Credentials(**{**second, "access_token": "not-a-token"}))  # type: ignore[arg-type]
    ok(saassy("secrets", "list"))
    third = stored()
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    # A spent refresh token is refused (and revokes its family): the CLI says to log in again.
    spent = httpx.post(
        f"{server.url}/api/v1/auth/refresh",
        json={"refresh_token": first["refresh_token"]},
        timeout=10,
    )
    assert spent.status_code == 401
    credentials.save(credentials.Credentials(**{**third, "expires_at": 0}))  # type: ignore[arg-type]
    ended = saassy("usage")
    assert ended.exit_code == 1
    assert "error: session_ended: your session has ended: log in again" in ended.stderr


def test_logout_ends_the_session_on_the_server(server: Server, config_home: Path) -> None:
    logged_in(server)
    refresh_token = stored()["refresh_token"]
    assert ok(saassy("logout")).stdout.strip() == f"logged out of {server.url}"
    assert not (config_home / "credentials.json").exists()
    refused = httpx.post(
        f"{server.url}/api/v1/auth/refresh", json={"refresh_token": refresh_token}, timeout=10
    )
    assert refused.status_code == 401
    after = saassy("usage")
    assert after.exit_code == 1
    assert "not logged in" in after.stderr
    assert ok(saassy("logout")).stdout.strip() == "not logged in"


def test_login_with_an_api_key_from_standard_input(server: Server, tenant: Tenant) -> None:
    result = ok(saassy("login", "--api-url", server.url, "--api-key-stdin", input=tenant.key))
    assert tenant.key not in result.output
    assert stored()["kind"] == "api_key"
    assert ok(saassy("usage", "-o", "json")).stdout.startswith("{")

    wrong = "sk_" + uuid.uuid4().hex
    refused = saassy("login", "--api-url", server.url, "--api-key", wrong)
    assert refused.exit_code == 1
    assert "invalid_api_key" in refused.stderr
    assert stored()["api_key"] == tenant.key  # the working login is kept
    assert wrong not in refused.output


def test_the_environment_overrides_the_login_and_a_login_goes_only_to_its_url(
    server: Server, tenant: Tenant
) -> None:
    logged_in(server)
    own = json.loads(ok(saassy("usage", "-o", "json")).stdout)["organization_id"]
    other = json.loads(ok(saassy("usage", "-o", "json", SAASSY_API_KEY=tenant.key)).stdout)
    assert other["organization_id"] != own
    empty = json.loads(ok(saassy("usage", "-o", "json", SAASSY_API_KEY="")).stdout)
    assert empty["organization_id"] == own  # an empty variable is no key

    elsewhere = f"http://127.0.0.1:{free_port()}"
    result = saassy("usage", "--api-url", elsewhere)
    assert result.exit_code == 1
    assert f"not logged in to {elsewhere} (you are logged in to {server.url})" in result.stderr


def test_a_refused_connection_names_the_url_and_saassy_dev() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = saassy("plans", "--api-url", url)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: cannot reach the API at {url}: nothing listens there "
        "(start it with `saassy dev`, or set --api-url or SAASSY_API_URL)"
    )


# --- API keys, plans, task types, usage --------------------------------------------------------


def test_api_keys_create_list_revoke(server: Server) -> None:
    logged_in(server)
    created = ok(saassy("api-keys", "create", "ci"))
    key = created.stdout.strip()
    assert key.startswith("sk_")
    assert "store it now" in created.stderr

    listing = json.loads(ok(saassy("api-keys", "list", "-o", "json")).stdout)
    [item] = [k for k in listing["items"] if k["name"] == "ci"]
    assert key.startswith(item["prefix"])
    assert key not in ok(saassy("api-keys", "list")).stdout
    assert ok(saassy("tasks", "list", "-o", "json", SAASSY_API_KEY=key)).stdout.startswith("{")

    by_key = saassy("api-keys", "create", "not by a key", SAASSY_API_KEY=key)
    assert by_key.exit_code == 1
    assert "error: user_required:" in by_key.stderr

    assert ok(saassy("api-keys", "revoke", item["id"])).stdout.strip() == (
        f"revoked API key {item['id']}"
    )
    revoked = saassy("tasks", "list", SAASSY_API_KEY=key)
    assert revoked.exit_code == 1
    assert "error: invalid_api_key" in revoked.stderr
    mistaken = saassy("api-keys", "revoke", key)  # the key instead of its id
    assert mistaken.exit_code == 1
    assert "not an API key id" in mistaken.stderr
    assert key not in mistaken.output


def test_api_keys_scoped_expiring_and_rotated(server: Server) -> None:
    logged_in(server)
    created = ok(saassy("api-keys", "create", "reader", "--scope", "read", "--expires-in", "90d"))
    old = created.stdout.strip()
    assert "scopes read, expires 20" in created.stderr
    listing = json.loads(ok(saassy("api-keys", "list", "-o", "json")).stdout)
    [item] = [k for k in listing["items"] if k["name"] == "reader"]
    assert (item["scopes"], item["expires_at"] is not None) == (["read"], True)

    rotated = ok(saassy("api-keys", "rotate", item["id"], "--overlap", "0"))
    new = rotated.stdout.strip()
    assert new.startswith("sk_")
    assert new != old
    assert f"the old key {item['id']} keeps working until" in rotated.stderr
    refused = saassy("tasks", "list", SAASSY_API_KEY=old)
    assert refused.exit_code == 1
    assert "error: api_key_expired" in refused.stderr
    assert ok(saassy("tasks", "list", "-o", "json", SAASSY_API_KEY=new)).stdout.startswith("{")
    assert "rotated 20" in ok(saassy("api-keys", "list")).stdout
    newest = json.loads(ok(saassy("api-keys", "list", "-o", "json")).stdout)["items"][-1]
    ok(saassy("api-keys", "rotate", newest["id"], "--overlap", "2h"))
    assert "rotating until" in ok(saassy("api-keys", "list")).stdout

    for bad in (["--overlap", "a while"], ["--overlap", "31d"]):
        refused = saassy("api-keys", "rotate", item["id"], *bad)
        assert refused.exit_code != 0, bad
    wrong_scope = saassy("api-keys", "create", "x", "--scope", "everything")
    assert wrong_scope.exit_code != 0


def test_plans_task_types_and_usage_print_the_apis_json(server: Server) -> None:
    plans = json.loads(ok(saassy("plans", "-o", "json", "--api-url", server.url)).stdout)
    assert plans == httpx.get(f"{server.url}/api/v1/plans").json()
    types = json.loads(ok(saassy("task-types", "-o", "json", "--api-url", server.url)).stdout)
    assert types == httpx.get(f"{server.url}/api/v1/task-types").json()
    table = ok(saassy("task-types", "--api-url", server.url)).stdout
    assert "echo" in table
    assert "python" in table
    assert "free" in ok(saassy("plans", "--api-url", server.url)).stdout
    unknown = saassy("plans", "--output", "yaml", "--api-url", server.url)
    assert unknown.exit_code == 2
    assert "'yaml' is not one of 'text', 'json'" in unknown.output

    logged_in(server)
    usage = json.loads(ok(saassy("usage", "-o", "json")).stdout)
    assert {"plan", "quotas", "limits"} <= set(usage)
    assert "tasks" in ok(saassy("usage")).stdout


# --- secrets -----------------------------------------------------------------------------------


def test_secrets_set_list_delete_never_show_the_value(server: Server) -> None:
    logged_in(server)
    value = "s3cr3t-" + uuid.uuid4().hex
    stored_ = ok(saassy("secrets", "set", "SERVICE_TOKEN", input=value + "\n"))
    assert stored_.stdout.strip() == "stored secret SERVICE_TOKEN"
    replaced = ok(saassy("secrets", "set", "SERVICE_TOKEN", "--value", value + "2"))
    assert replaced.stdout.strip() == "replaced the value of secret SERVICE_TOKEN"

    listing = json.loads(ok(saassy("secrets", "list", "-o", "json")).stdout)
    assert [s["name"] for s in listing["items"]] == ["SERVICE_TOKEN"]
    table = ok(saassy("secrets", "list"))
    for output in (stored_.output, replaced.output, table.output, json.dumps(listing)):
        assert value not in output

    bad = saassy("secrets", "set", "../api-keys", input="x")
    assert bad.exit_code == 2
    assert ok(saassy("secrets", "delete", "SERVICE_TOKEN")).stdout.strip() == (
        "deleted secret SERVICE_TOKEN"
    )
    assert json.loads(ok(saassy("secrets", "list", "-o", "json")).stdout)["items"] == []
    gone = saassy("secrets", "delete", "SERVICE_TOKEN")
    assert gone.exit_code == 1
    assert "error: not_found" in gone.stderr


# --- schedules ---------------------------------------------------------------------------------


def test_schedules_create_list_pause_resume_delete(server: Server) -> None:
    logged_in(server)
    created = ok(
        saassy(
            "schedules", "create", "Morning report", "--type", "echo", "--cron", "0 9 * * *",
            "--timezone", "Europe/Paris", "--input", '{"n": 1}', "--catch-up", "skip",
        )
    )  # fmt: skip
    match = re.search(
        r"created schedule ([0-9a-f-]{36}) \(0 9 \* \* \* \(Europe/Paris\)\)", created.stdout
    )
    assert match, created.stdout
    schedule_id = match.group(1)
    # The next run in UTC, said so, and in the schedule's own zone: 09:00 in Paris.
    assert re.search(r"next run: 20\S+ \d\d:\d\d UTC \(20\S+ 09:00 Europe/Paris\)", created.stdout)

    listing = json.loads(ok(saassy("schedules", "list", "-o", "json")).stdout)
    [schedule] = listing["items"]
    assert (schedule["id"], schedule["input"], schedule["catch_up"]) == (
        schedule_id,
        {"n": 1},
        "skip",
    )
    table = ok(saassy("schedules", "list")).stdout
    assert "Morning report" in table
    assert "0 9 * * * (Europe/Paris)" in table
    assert "NEXT RUN (UTC)" in table
    narrow = ok(saassy("schedules", "list", COLUMNS="60")).stdout  # piped: nothing cut
    assert schedule_id in narrow
    assert "0 9 * * * (Europe/Paris)" in narrow
    assert "…" not in narrow

    assert ok(saassy("schedules", "pause", schedule_id)).stdout.strip() == (
        f"paused schedule {schedule_id}"
    )
    assert "paused" in ok(saassy("schedules", "list")).stdout
    assert "Europe/Paris)" in ok(saassy("schedules", "resume", schedule_id)).stdout

    bad = saassy("schedules", "create", "Bad", "--type", "echo", "--cron", "not cron")
    assert bad.exit_code == 1
    assert "error: invalid_cron" in bad.stderr
    neither = saassy("schedules", "create", "Neither", "--type", "echo")
    assert neither.exit_code == 2

    assert ok(saassy("schedules", "delete", schedule_id)).stdout.strip() == (
        f"deleted schedule {schedule_id}"
    )
    assert json.loads(ok(saassy("schedules", "list", "-o", "json")).stdout)["items"] == []
    gone = saassy("schedules", "delete", schedule_id)
    assert gone.exit_code == 1
    assert "error: not_found" in gone.stderr


# --- webhooks ----------------------------------------------------------------------------------


def test_webhooks_create_list_test_deliveries_redeliver_delete(server: Server) -> None:
    logged_in(server)
    url = "https://hooks.saassy-test.invalid/saassy?token=abc"  # never resolves
    created = ok(
        saassy("webhooks", "create", url, "--event", "task.failed", "--description", "Orders")
    )
    # Only the secret on standard output (SECRET=$(saassy webhooks create ...)); the rest on stderr.
    secret = re.fullmatch(r"(whsec_[A-Za-z0-9+/]{43}=)\n", created.stdout)
    assert secret, created.stdout
    match = re.search(r"created endpoint ([0-9a-f-]{36}) \(task.failed\)", created.stderr)
    assert match, created.stderr
    assert "store it now" in created.stderr
    endpoint_id = match.group(1)
    usage = ok(saassy("webhooks", "create", "--help")).stdout
    assert "{url}" not in usage
    assert "URL" in usage

    listing = json.loads(ok(saassy("webhooks", "list", "-o", "json")).stdout)
    [endpoint] = listing["items"]
    assert (endpoint["id"], endpoint["url"], endpoint["description"]) == (
        endpoint_id,
        url,
        "Orders",
    )
    table = ok(saassy("webhooks", "list")).stdout
    assert "hooks.saassy-test.invalid" in table
    assert secret.group(1) not in table
    assert "whsec_" not in table
    # Piped into a narrow pipe (stdout is not a terminal): every column whole, ids in full.
    narrow = ok(saassy("webhooks", "list", COLUMNS="60")).stdout
    assert endpoint_id in narrow
    assert url in narrow
    assert "EVENTS" in narrow
    assert "…" not in narrow

    tested = ok(saassy("webhooks", "test", endpoint_id)).stdout
    sent = re.search(r"test event queued: message ([0-9a-f-]{36}) \(msg_[0-9a-f]{32}\)", tested)
    assert sent, tested
    message_id = sent.group(1)
    log = json.loads(ok(saassy("webhooks", "deliveries", endpoint_id, "-o", "json")).stdout)
    [message] = log["items"]
    assert (message["id"], message["event_type"]) == (message_id, "webhook.test")
    assert "webhook.test" in ok(saassy("webhooks", "deliveries", endpoint_id)).stdout
    narrow = ok(saassy("webhooks", "deliveries", endpoint_id, COLUMNS="60")).stdout
    assert message_id in narrow
    assert "CREATED (UTC)" in narrow
    assert "…" not in narrow
    # Its attempts fail (the name does not resolve) and are retried: still pending.
    pending = saassy("webhooks", "redeliver", endpoint_id, message_id)
    assert pending.exit_code == 1
    assert "error: webhook_message_pending" in pending.stderr

    unknown = saassy("webhooks", "create", url, "--event", "task.exploded")
    assert unknown.exit_code == 2
    assert ok(saassy("webhooks", "delete", endpoint_id)).stdout.strip() == (
        f"deleted endpoint {endpoint_id}"
    )
    assert ok(saassy("webhooks", "list")).stdout.strip() == "no webhook endpoints"
    gone = saassy("webhooks", "test", endpoint_id)
    assert gone.exit_code == 1
    assert "error: not_found" in gone.stderr


# --- artifacts, download, rerun ----------------------------------------------------------------

WRITES_ARTIFACTS = """
import os, pathlib
out = pathlib.Path(os.environ["SAASSY_OUTPUT"])
(out / "reports").mkdir()
(out / "reports" / "a.csv").write_text("x,y\\n1,2\\n")
(out / "b.bin").write_bytes(bytes(range(256)) * 1000)
"""


def test_artifacts_download_and_rerun(engine_tenant: Tenant, tmp_path: Path) -> None:
    task = json.loads(
        ok(
            engine_tenant.tasks(
                "submit", "python", "--input", json.dumps({"code": WRITES_ARTIFACTS}),
                "--priority", "7", "--timeout", "40", "--wait", "-o", "json",
            )
        ).stdout
    )  # fmt: skip
    assert task["status"] == "succeeded", task
    task_id = task["id"]

    listing = json.loads(ok(engine_tenant.tasks("artifacts", task_id, "-o", "json")).stdout)
    assert sorted(a["path"] for a in listing["items"]) == ["b.bin", "reports/a.csv"]
    assert "reports/a.csv" in ok(engine_tenant.tasks("artifacts", task_id)).stdout

    everything = tmp_path / "all"
    ok(engine_tenant.tasks("download", task_id, "--to", str(everything)))
    assert (everything / "reports" / "a.csv").read_text() == "x,y\n1,2\n"
    assert (everything / "b.bin").read_bytes() == bytes(range(256)) * 1000

    again = engine_tenant.tasks("download", task_id, "--to", str(everything))
    assert again.exit_code == 1
    assert "exists: pass --force to replace it" in again.stderr
    (everything / "reports" / "a.csv").write_text("changed")
    ok(engine_tenant.tasks("download", task_id, "--to", str(everything), "--force"))
    assert (everything / "reports" / "a.csv").read_text() == "x,y\n1,2\n"

    one = tmp_path / "one.csv"
    ok(engine_tenant.tasks("download", task_id, "reports/a.csv", "--to", str(one)))
    assert one.read_text() == "x,y\n1,2\n"
    to_stdout = ok(engine_tenant.tasks("download", task_id, "reports/a.csv", "--to", "-"))
    assert to_stdout.stdout == "x,y\n1,2\n"
    missing = engine_tenant.tasks("download", task_id, "nope.txt")
    assert missing.exit_code == 1
    assert "has no artifact 'nope.txt'" in missing.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    rerun = json.loads(ok(engine_tenant.tasks("rerun", task_id, "--wait", "-o", "json")).stdout)
    assert rerun["id"] != task_id
    assert rerun["status"] == "succeeded"
    for field in ("type", "input", "priority", "timeout_s"):
        assert rerun[field] == task[field]


@pytest.mark.parametrize(
    "path", ["../x", "/etc/passwd", "a/../../x", "a//b", "./a", "a\\..\\b", "a\nb", ""]
)
def test_an_artifact_path_that_could_leave_its_directory_is_refused(path: str) -> None:
    with pytest.raises(typer.Exit):
        safe_relative(path)


def test_a_plain_artifact_path_is_kept() -> None:
    assert safe_relative("reports/2026/a.csv") == Path("reports/2026/a.csv")


def test_download_never_follows_a_symlink_out_of_the_target(
    engine_tenant: Tenant, tmp_path: Path
) -> None:
    code = 'import os; p = os.environ["SAASSY_OUTPUT"]; os.mkdir(p + "/d"); open(p + "/d/f", "w")'
    task = json.loads(
        ok(
            engine_tenant.tasks(
                "submit", "python", "--input", json.dumps({"code": code}), "--wait", "-o", "json"
            )
        ).stdout
    )
    target, outside = tmp_path / "target", tmp_path / "outside"
    target.mkdir()
    outside.mkdir()
    os.symlink(outside, target / "d")
    result = engine_tenant.tasks("download", task["id"], "--to", str(target))
    assert result.exit_code == 1
    assert re.search(r"leads out of", result.stderr)
    assert list(outside.iterdir()) == []
