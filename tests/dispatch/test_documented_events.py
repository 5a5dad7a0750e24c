"""Every `$SAASSY_EVENTS` line docs/tasks.md shows is parsed, and metered as it says.

The lines come from the document itself, so the documentation and the code cannot drift: a
line edited there is tested here as written.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.dispatch.worker_output import ActionEvent, ProgressEvent, UnitsEvent, parse_event
from saassy.models import TaskStatus
from saassy.runtime.fake import FakeRuntime, FakeScript
from tests.conftest import SignUp
from tests.dispatch.support import usage_of, wait_for_status

TASKS_DOC = Path(__file__).resolve().parents[2] / "docs" / "tasks.md"
SECTION = "### Event lines (`$SAASSY_EVENTS`)"

CATALOG = """
default_plan = "small"

[plans.small]
name = "Small"
tasks_per_month = 100
daily_action_caps = { publish = 10 }

[task_types.publisher]
title = "Publisher"
command = ["/bin/true"]
actions = ["publish"]
"""


def documented_lines() -> list[str]:
    """The inline-code JSON objects of the event-lines section, in the order shown."""
    text = TASKS_DOC.read_text(encoding="utf-8")
    start = text.index(SECTION) + len(SECTION)
    end = text.find("\n#", start)
    section = text[start : end if end != -1 else len(text)]
    return re.findall(r"`(\{.*?\})`", section)


DOCUMENTED = documented_lines()


def test_the_doc_shows_each_kind_of_line() -> None:
    kinds = {json.loads(line)["type"] for line in DOCUMENTED}
    assert kinds == {"progress", "action", "units"}


@pytest.mark.parametrize("line", DOCUMENTED)
def test_each_documented_line_parses_as_written(line: str) -> None:
    written = json.loads(line)
    event = parse_event(line)
    match written["type"]:
        case "progress":
            assert event == ProgressEvent(written.get("percent"), written.get("message"))
        case "action":
            assert event == ActionEvent(written["name"], written.get("count", 1))
        case "units":
            assert event == UnitsEvent(written["name"], written.get("quantity", 1))


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    path = tmp_path / "saassy.toml"
    path.write_text(CATALOG, encoding="utf-8")
    return settings_factory(config=path)


async def run_task_reporting(
    line: str,
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    fake_runtime: FakeRuntime,
) -> tuple[dict[tuple[int, str], float], dict[str, Any]]:
    """Submit a task whose program writes `line`; its ledger rows and the org's usage after."""
    account = await signup()
    fake_runtime.default = FakeScript(events=(line,))
    submitted = await client.post(
        "/api/v1/tasks", json={"type": "publisher", "input": {}}, headers=account.headers
    )
    assert submitted.status_code == 202, submitted.text
    task_id = uuid.UUID(submitted.json()["id"])
    statuses = await wait_for_status(ctx.sessionmaker, [task_id])
    assert statuses[task_id] is TaskStatus.succeeded
    usage = await client.get("/api/v1/usage", headers=account.headers)
    assert usage.status_code == 200, usage.text
    return await usage_of(ctx.sessionmaker, task_id), usage.json()


@pytest.mark.parametrize(
    "line", [line for line in DOCUMENTED if json.loads(line)["type"] in ("action", "units")]
)
async def test_each_documented_metered_line_is_metered(
    line: str,
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    fake_runtime: FakeRuntime,
) -> None:
    written = json.loads(line)
    ledger, usage = await run_task_reporting(line, client, ctx, signup, fake_runtime)
    quotas = {quota["metric"]: quota for quota in usage["quotas"]}
    if written["type"] == "action":
        count = written.get("count", 1)
        assert ledger[(1, f"action:{written['name']}")] == count
        assert quotas[f"action:{written['name']}"]["used"] == count  # against the daily cap
    else:
        assert ledger[(1, f"units:{written['name']}")] == written.get("quantity", 1)
        # Reserved at admission, reported as none: the unit goes back.
        assert quotas["action:publish"]["used"] == 0
