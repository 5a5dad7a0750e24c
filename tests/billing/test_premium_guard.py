"""A task type may require a plan (`requires_plan`): other plans get 402
`subscription_required` naming where to subscribe, from the API and the dashboard alike."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from saassy.admin.service import set_plan
from saassy.config import ConfigError, Settings
from saassy.config.catalog import load_catalog
from saassy.context import AppContext
from saassy.models import Task
from tests.billing.billing_app import CATALOG, write_catalog
from tests.tasks.conftest import Tenant, tenant  # noqa: F401 - a fixture
from tests.web.support import browser_for, sign_up, submit


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    return settings_factory(config=write_catalog(tmp_path))  # no Stripe: the guard needs none


async def test_a_premium_type_answers_402_on_free_and_runs_on_pro(
    client: httpx.AsyncClient,
    tenant: Tenant,  # noqa: F811
) -> None:
    free = await tenant("free")
    refused = await client.post(
        "/api/v1/tasks", json={"type": "render", "input": {}}, headers=free.headers
    )
    assert refused.status_code == 402, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("subscription_required", "type")
    assert "/pricing" in error["message"]
    assert error["details"]["required_plans"] == ["pro", "enterprise"]
    assert error["details"]["upgrade_url"] == "/pricing"
    ordinary = await client.post(
        "/api/v1/tasks", json={"type": "echo", "input": {}}, headers=free.headers
    )
    assert ordinary.status_code == 202, ordinary.text
    pro = await tenant("pro")
    admitted = await client.post(
        "/api/v1/tasks", json={"type": "render", "input": {}}, headers=pro.headers
    )
    assert admitted.status_code == 202, admitted.text


async def test_the_dashboard_form_shows_the_refusal(app: FastAPI) -> None:
    async with browser_for(app) as browser:
        await sign_up(browser)
        answer = await submit(
            browser,
            "/app/tasks/new",
            {"type": "render", "input": "{}"},
            page="/app/tasks/new?type=render",
        )
    assert answer.status_code == 402, answer.text
    assert "subscription to the pro or enterprise plan" in answer.text
    assert "/pricing" in answer.text


def test_a_required_plan_that_does_not_exist_is_refused_with_its_key(tmp_path: Path) -> None:
    path = write_catalog(
        tmp_path, CATALOG.replace('["pro", "enterprise"]', '["pro", "entreprise"]')
    )
    with pytest.raises(ConfigError) as error:
        load_catalog(path)
    assert str(error.value).startswith(
        f"{path}: task_types.render.requires_plan: no plan 'entreprise' (plans: enterprise, "
        "free, pro)"
    )


async def test_after_a_downgrade_neither_a_replay_nor_a_new_submission_runs_premium_work(
    ctx: AppContext,
    client: httpx.AsyncClient,
    tenant: Tenant,  # noqa: F811
) -> None:
    pro = await tenant("pro")
    headers = {**pro.headers, "Idempotency-Key": "render-1"}
    body = {"type": "render", "input": {}}
    first = await client.post("/api/v1/tasks", json=body, headers=headers)
    assert first.status_code == 202, first.text
    async with ctx.sessionmaker() as session, session.begin():
        await set_plan(session, ctx.settings.catalog, pro.organization_id, "free")
    again = await client.post("/api/v1/tasks", json=body, headers=headers)
    # Refused, or at most the same task answered again: never a second one.
    assert again.status_code in (402, 200, 202), again.text
    if again.status_code != 402:
        assert again.json()["id"] == first.json()["id"]
    fresh = await client.post("/api/v1/tasks", json=body, headers=pro.headers)
    assert fresh.status_code == 402, fresh.text
    async with ctx.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Task).where(Task.type == "render")
        )
    assert count == 1
