"""The `saassy` command, through Typer's runner and as a real process."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from saassy import __version__
from saassy.cli import app
from saassy.cli.serve import billing_line
from saassy.config import Settings
from saassy.context import AppContext
from saassy.kit.db import create_engine
from saassy.kit.migrate import alembic_config
from saassy.kit.request_head import BoundedHeadProtocol
from tests.audit.support import entries
from tests.conftest import TEST_SECRET
from tests.runtime.support import without_system_bwrap
from tests.runtime.test_abuse import is_sandbox_uid

PASSWORD = "correct horse battery"
# `saassy api` signs tokens: it needs a secret key to start at all.
SIGNING = {"SAASSY_SECRET_KEY": TEST_SECRET}
TERMINAL = {"succeeded", "failed", "timed_out", "canceled"}


def invoke(*args: str, env: Mapping[str, str | None] | None = None, input: str = "") -> Result:
    """Run the command in-process with only the given SAASSY_* variables set."""
    clean: dict[str, str | None] = {key: None for key in os.environ if key.startswith("SAASSY_")}
    clean.update(env or {})
    return CliRunner().invoke(app, list(args), env=clean, input=input, catch_exceptions=False)


async def invoke_async(*args: str, database_url: str, input: str = "") -> Result:
    """`invoke` from an async test: the command runs its own event loop, so in a thread."""
    return await asyncio.to_thread(
        invoke, *args, env={"SAASSY_DATABASE_URL": database_url}, input=input
    )


def ids_in(output: str) -> tuple[str, str]:
    user_id = re.search(r"user id\s+(\S+)", output)
    organization_id = re.search(r"organization id\s+(\S+)", output)
    assert user_id, output
    assert organization_id, output
    return user_id.group(1), organization_id.group(1)


def test_version_prints_the_installed_version() -> None:
    result = invoke("version")
    assert result.exit_code == 0
    assert result.output.strip() == f"saassy {__version__}"


@pytest.mark.parametrize(
    ("command", "summary"),
    [
        ([], "launch a SaaS"),
        (["dev"], "Run everything in one process"),
        (["api"], "Run the production API server"),
        (["db"], "Manage the database schema"),
        (["db", "upgrade"], "Migrate the database"),
        (["admin"], "Administer accounts and plans"),
        (["admin", "create-user"], "Create a user with a personal organization"),
        (["admin", "set-plan"], "Put an organization on a plan"),
        (["version"], "Print the installed version"),
    ],
)
def test_every_command_explains_itself(command: list[str], summary: str) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    assert summary in " ".join(result.output.split())


def test_db_upgrade_migrates_a_new_database_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh' / 'saassy.db'}"
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    for _ in range(2):
        result = invoke("db", "upgrade", env={"SAASSY_DATABASE_URL": url})
        assert result.exit_code == 0, result.output
        with closing(sqlite3.connect(tmp_path / "fresh" / "saassy.db")) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            (revision,) = db.execute("SELECT version_num FROM alembic_version").fetchone()
        assert {"users", "organizations", "memberships", "api_keys"} <= tables
        assert revision == head


def test_admin_finds_the_data_dir_as_dev_does(tmp_path: Path) -> None:
    data_dir = tmp_path / "elsewhere"
    assert invoke("db", "upgrade", env={"SAASSY_DATA_DIR": str(data_dir)}).exit_code == 0
    result = invoke(
        "admin", "create-user", "dir@example.com", "--password-stdin",
        env={"SAASSY_DATA_DIR": str(data_dir)}, input=PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"database sqlite:///{data_dir.resolve() / 'saassy.db'}" in result.stderr


def test_db_upgrade_to_an_unknown_revision_fails_cleanly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'saassy.db'}"
    result = invoke("db", "upgrade", "--revision", "nope", env={"SAASSY_DATABASE_URL": url})
    assert result.exit_code == 1
    assert "nope" in result.output
    assert "Traceback" not in result.output


def test_a_mistyped_variable_stops_a_command_with_one_line(tmp_path: Path) -> None:
    """Left alone, the typo would migrate the embedded database instead of the one meant."""
    url = f"sqlite:///{tmp_path / 'saassy.db'}"
    result = invoke("db", "upgrade", env={"SAASSY_DATABSE_URL": url})
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: unknown setting: SAASSY_DATABSE_URL (did you mean SAASSY_DATABASE_URL?); "
        "the README's Configuration section lists every SAASSY_* variable"
    )


async def test_created_user_logs_in_with_that_password(
    client: httpx.AsyncClient, database_url: str
) -> None:
    result = await invoke_async(
        "admin",
        "create-user",
        "Ops@Example.com",
        "--password-stdin",
        database_url=database_url,
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    user_id, organization_id = ids_in(result.output)
    # Which database it wrote to, said on stderr (without a password).
    assert result.stderr.startswith(f"database {make_url(database_url).render_as_string()}")

    login = await client.post(
        "/api/v1/auth/login", json={"email": "ops@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    assert login.json()["user"]["id"] == user_id
    assert login.json()["organization"]["id"] == organization_id
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.json()["is_staff"] is False


async def test_staff_flag_makes_a_staff_user_with_a_prompted_password(
    client: httpx.AsyncClient, database_url: str
) -> None:
    result = await invoke_async(
        "admin",
        "create-user",
        "admin@example.com",
        "--staff",
        database_url=database_url,
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output

    login = await client.post(
        "/api/v1/auth/login", json={"email": "admin@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    assert me.json()["is_staff"] is True
    assert me.json()["email_verified"] is True  # the operator vouches for the address


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("not-an-email", PASSWORD, "email"),
        ("short@example.com", "short", "password"),
    ],
)
async def test_create_user_refuses_bad_input_cleanly(
    database_url: str, email: str, password: str, message: str
) -> None:
    result = await invoke_async(
        "admin", "create-user", email, "--password", password, database_url=database_url
    )
    assert result.exit_code == 1
    assert f"error: {message}" in result.output
    assert "Traceback" not in result.output


async def test_create_user_twice_is_a_clean_error(database_url: str) -> None:
    args = ("admin", "create-user", "twice@example.com", "--password", PASSWORD)
    assert (await invoke_async(*args, database_url=database_url)).exit_code == 0
    again = await invoke_async(*args, database_url=database_url)
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert "Traceback" not in again.output


async def test_set_plan_moves_an_organization_to_a_catalog_plan(
    client: httpx.AsyncClient, ctx: AppContext, database_url: str
) -> None:
    created = await invoke_async(
        "admin", "create-user", "buyer@example.com", "--password", PASSWORD,
        database_url=database_url,
    )  # fmt: skip
    _, organization_id = ids_in(created.output)

    result = await invoke_async(
        "admin", "set-plan", organization_id, "pro", database_url=database_url
    )
    assert result.exit_code == 0, result.output
    assert "is now on plan pro" in result.output

    login = await client.post(
        "/api/v1/auth/login", json={"email": "buyer@example.com", "password": PASSWORD}
    )
    assert login.json()["organization"]["plan"] == "pro"
    # A staff action from the host: no user, no address; one entry.
    [changed] = await entries(ctx, "plan.changed")
    assert (changed.by_staff, changed.actor_user_id, changed.ip) == (True, None, None)
    assert str(changed.organization_id) == organization_id


@pytest.mark.parametrize(
    ("organization_id", "plan", "message"),
    [
        (str(uuid.uuid4()), "gold", "There is no plan 'gold'"),
        (str(uuid.uuid4()), "pro", "Organization not found"),
        ("not-a-uuid", "pro", "not an organization id"),
    ],
)
async def test_set_plan_refuses_what_does_not_exist(
    database_url: str, organization_id: str, plan: str, message: str
) -> None:
    result = await invoke_async(
        "admin", "set-plan", organization_id, plan, database_url=database_url
    )
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    if plan == "gold":
        assert "enterprise, free, pro, starter" in result.output


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """`saassy api` runs up to where it would serve; then uvicorn.run records the call."""
    calls: list[dict[str, object]] = []
    monkeypatch.setattr("saassy.server.uvicorn.run", lambda *_, **options: calls.append(options))
    return calls


def sqlite_revision(path: Path, revision: str) -> None:
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE alembic_version SET version_num = ?", (revision,))


def test_api_on_a_database_without_schema_says_to_migrate(
    tmp_path: Path, served: list[dict[str, object]]
) -> None:
    url = f"sqlite:///{tmp_path / 'saassy.db'}"
    result = invoke("api", env={"SAASSY_DATABASE_URL": url, **SIGNING})
    assert result.exit_code == 1
    assert result.output == (
        f"error: the database {url} has no schema yet: run `saassy db upgrade` first\n"
    )
    assert served == []
    assert not (tmp_path / "saassy.db").exists()  # looking did not create it


def test_api_on_a_database_behind_or_ahead_says_so(
    tmp_path: Path, served: list[dict[str, object]]
) -> None:
    url = f"sqlite:///{tmp_path / 'saassy.db'}"
    script = ScriptDirectory.from_config(alembic_config(url))
    head = script.get_current_head()
    first = script.get_base()
    assert invoke("db", "upgrade", env={"SAASSY_DATABASE_URL": url}).exit_code == 0
    sqlite_revision(tmp_path / "saassy.db", str(first))

    behind = invoke("api", env={"SAASSY_DATABASE_URL": url, **SIGNING})
    assert behind.exit_code == 1
    assert behind.output == (
        f"error: the database {url} is at revision {first}, behind this version's {head}: "
        "run `saassy db upgrade` first\n"
    )

    sqlite_revision(tmp_path / "saassy.db", "f00dfeedbeef")
    ahead = invoke("api", env={"SAASSY_DATABASE_URL": url, **SIGNING})
    assert ahead.exit_code == 1
    assert "is at revision f00dfeedbeef, which this version of Saassy does not know" in ahead.output
    assert served == []


async def test_api_on_a_migrated_database_serves(
    database_url: str, served: list[dict[str, object]]
) -> None:
    result = await asyncio.to_thread(
        invoke, "api", env={"SAASSY_DATABASE_URL": database_url, **SIGNING}
    )
    assert result.exit_code == 0, result.output
    assert len(served) == 1
    # The request-head limit, and no proxy headers believed by uvicorn itself (the app decides).
    assert served[0]["http"] is BoundedHeadProtocol
    assert served[0]["proxy_headers"] is False


async def test_api_without_dockerd_stops_in_one_line(
    database_url: str, tmp_path: Path, served: list[dict[str, object]]
) -> None:
    """As `saassy dev` does, before a server process starts (not a traceback of its start)."""
    catalog = tmp_path / "saassy.toml"
    catalog.write_text(
        'default_plan = "small"\n[plans.small]\nname = "Small"\n'
        '[task_types.render]\ntitle = "Render"\nimage = "saassy/base:test"\n'
    )
    socket = f"unix://{tmp_path}/no-docker.sock"
    env = {
        "SAASSY_DATABASE_URL": database_url,
        "SAASSY_CONFIG": str(catalog),
        "SAASSY_RUNTIME": "docker",
        "SAASSY_DOCKER_URL": socket,
        **SIGNING,
    }
    result = await asyncio.to_thread(invoke, "api", env=env)
    assert result.exit_code == 1
    assert result.output == (
        f"error: SAASSY_RUNTIME=docker: no dockerd socket at {socket} (install docker.io and "
        "start dockerd, or point SAASSY_DOCKER_URL at one)\n"
    )
    assert served == []


async def test_api_names_an_unmigrated_postgresql_database_without_its_password(
    database_url: str, served: list[dict[str, object]]
) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("a PostgreSQL URL carries a password")
    server = make_url(database_url)
    scratch = f"{server.database}_unmigrated"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}"'))
        await conn.execute(text(f'CREATE DATABASE "{scratch}"'))
    try:
        url = server.set(database=scratch, password="hunter2-not-shown")
        secret_url = url.render_as_string(hide_password=False)
        result = await asyncio.to_thread(
            invoke, "api", env={"SAASSY_DATABASE_URL": secret_url, **SIGNING}
        )
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        await admin.dispose()
    assert result.exit_code == 1
    shown = url.render_as_string(hide_password=True)
    assert result.output == (
        f"error: the database {shown} has no schema yet: run `saassy db upgrade` first\n"
    )
    assert "hunter2" not in result.output
    assert served == []


def test_a_broken_saassy_toml_is_named_with_its_key(tmp_path: Path) -> None:
    broken = tmp_path / "saassy.toml"
    broken.write_text('[plans.free]\nname = "Free"\ntasks_per_month = -1\n')
    result = invoke(
        "db", "upgrade", "--config", str(broken),
        env={"SAASSY_DATABASE_URL": f"sqlite:///{tmp_path / 'saassy.db'}"},
    )  # fmt: skip
    assert result.exit_code == 1
    flat = " ".join(result.output.split())
    assert str(broken) in flat
    assert "plans.free.tasks_per_month" in flat
    assert not (tmp_path / "saassy.db").exists()


def test_the_dev_banner_says_whether_billing_is_on_and_where_stripe_is(
    settings_factory: Callable[..., Settings],
) -> None:
    off = settings_factory()
    assert billing_line(off) == "  billing   off (no SAASSY_STRIPE_SECRET_KEY: staff assign plans)"
    stripe = {"stripe_secret_key": "sk_test_local", "stripe_webhook_secret": "whsec_local"}
    assert billing_line(settings_factory(**stripe)) == "  billing   on: Stripe test mode"
    double = settings_factory(**stripe, stripe_api_base="http://127.0.0.1:8421")
    assert billing_line(double) == "  billing   on: Stripe test mode at http://127.0.0.1:8421"
    live = settings_factory(**{**stripe, "stripe_secret_key": "sk_live_abc"})
    assert billing_line(live) == "  billing   on: Stripe live mode"


# --- `saassy dev` as a real process ------------------------------------------------------------


def test_dev_serves_the_api_and_restarts_on_the_same_data(run_dev: object, tmp_path: Path) -> None:
    start = run_dev
    assert callable(start)
    data_dir = tmp_path / "data"

    base, log = start(data_dir)
    assert httpx.get(f"{base}/health").json()["status"] == "ok"
    signup = httpx.post(
        f"{base}/api/v1/auth/signup", json={"email": "first@example.com", "password": PASSWORD}
    )
    assert signup.status_code == 201, signup.text
    hint = log.read_text()
    assert f"{base}/api/docs" in hint
    assert f"curl -X POST {base}/api/v1/auth/signup" in hint
    assert "saassy admin create-user" in hint
    assert "billing   off (no SAASSY_STRIPE_SECRET_KEY" in hint
    assert (data_dir / "saassy.db").is_file()

    base, _ = start(data_dir)  # the first one still runs: a second start must not disturb it
    login = httpx.post(
        f"{base}/api/v1/auth/login", json={"email": "first@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    assert login.json()["user"]["id"] == signup.json()["user"]["id"]


def test_dev_without_the_systems_bwrap_runs_tasks_closed_with_the_bundled_one(
    run_dev: object, tmp_path: Path
) -> None:
    """A newcomer's machine: Python and make, no bubblewrap package. The sandbox still holds."""
    start = run_dev
    assert callable(start)
    data_dir = tmp_path / "data"
    with without_system_bwrap():
        base, log = start(data_dir, PATH=os.environ["PATH"])
    port = base.rsplit(":", 1)[1]
    banner = log.read_text()
    # With or without writable cgroups (a non-root user has none): namespaces, bundled bwrap.
    isolation = r"isolation namespaces(\+cgroups)?: bubblewrap \S+ \(bundled\)"
    assert re.search(isolation, banner), banner
    system = httpx.get(f"{base}/api/v1/system").json()
    assert system["runtime"]["bwrap"]["origin"] == "bundled"
    signup = httpx.post(
        f"{base}/api/v1/auth/signup", json={"email": "new@example.com", "password": PASSWORD}
    )
    headers = {"Authorization": f"Bearer {signup.json()['access_token']}"}
    code = f"""
import os, socket, json
seen = {{"uid": os.getuid(), "data_dir": os.path.exists({str(data_dir)!r}),
        "database": os.path.exists({str(data_dir / "saassy.db")!r})}}
for port in ({port}, 5432, 6379):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        seen[str(port)] = "reached"
    except OSError:
        seen[str(port)] = "unreachable"
try:
    open("/etc/owned", "w")
    seen["etc"] = "written"
except OSError:
    seen["etc"] = "read-only"
json.dump(seen, open("result.json", "w"))
"""
    submitted = httpx.post(
        f"{base}/api/v1/tasks", headers=headers, json={"type": "python", "input": {"code": code}}
    )
    assert submitted.status_code == 202, submitted.text
    task_url = f"{base}/api/v1/tasks/{submitted.json()['id']}"
    deadline = time.monotonic() + 30
    while (task := httpx.get(task_url, headers=headers).json())["status"] not in TERMINAL:
        assert time.monotonic() < deadline, task
        time.sleep(0.1)  # polling for the outcome, not synchronisation
    assert task["status"] == "succeeded", task
    assert is_sandbox_uid(task["result"].pop("uid"))
    assert task["result"] == {
        "data_dir": False,
        "database": False,
        port: "unreachable",
        "5432": "unreachable",
        "6379": "unreachable",
        "etc": "read-only",
    }
