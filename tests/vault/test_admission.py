"""A task type's declared secrets must be stored before its tasks are admitted."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event, func, select

from saassy.context import AppContext
from saassy.models import QuotaReservation, Task
from tests.conftest import SignUp
from tests.organizations.support import create_organization
from tests.vault.support import put_secret

TASKS = "/api/v1/tasks"


@contextmanager
def vault_statements(ctx: AppContext) -> Iterator[list[str]]:
    """The SQL statements that touch the vault while the block runs."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        statement = args[2]
        if "vault_items" in statement:
            seen.append(statement)

    event.listen(ctx.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(ctx.engine.sync_engine, "before_cursor_execute", record)


async def counts(ctx: AppContext) -> tuple[int, int]:
    """(tasks, quota reservations) in the whole database."""
    async with ctx.sessionmaker() as session:
        tasks = await session.scalar(select(func.count()).select_from(Task))
        reservations = await session.scalar(select(func.count()).select_from(QuotaReservation))
    return tasks or 0, reservations or 0


async def test_a_missing_secret_fails_admission_naming_it(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    with vault_statements(ctx) as statements:
        response = await client.post(
            TASKS, json={"type": "mailer", "input": {}}, headers=owner.headers
        )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("secret_missing", "secrets.SMTP_PASSWORD")
    assert "PUT /api/v1/secrets/SMTP_PASSWORD" in error["message"]
    assert error["details"] == {"missing": ["SMTP_PASSWORD", "API_TOKEN"]}
    assert len(statements) == 1, "one query for all the names"
    assert await counts(ctx) == (0, 0)

    assert (await put_secret(client, owner.headers, "SMTP_PASSWORD", "pw")).status_code == 201
    response = await client.post(TASKS, json={"type": "mailer", "input": {}}, headers=owner.headers)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "secrets.API_TOKEN"
    assert response.json()["error"]["details"] == {"missing": ["API_TOKEN"]}

    assert (await put_secret(client, owner.headers, "API_TOKEN", "tok")).status_code == 201
    admitted = await client.post(TASKS, json={"type": "mailer", "input": {}}, headers=owner.headers)
    assert admitted.status_code == 202, admitted.text
    assert await counts(ctx) == (1, 1)


async def test_another_organizations_secrets_do_not_count(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    team = (await create_organization(client, owner, "Team"))["id"]
    for name in ("SMTP_PASSWORD", "API_TOKEN"):
        assert (await put_secret(client, owner.headers, name, "v", team)).status_code == 201
    personal = await client.post(TASKS, json={"type": "mailer", "input": {}}, headers=owner.headers)
    assert personal.status_code == 422
    assert personal.json()["error"]["code"] == "secret_missing"
    in_team = await client.post(
        TASKS,
        json={"type": "mailer", "input": {}},
        headers=owner.headers | {"Saassy-Organization": team},
    )
    assert in_team.status_code == 202, in_team.text


async def test_a_deleted_secret_fails_the_next_submission(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    assert (await put_secret(client, owner.headers, "API_TOKEN", "tok")).status_code == 201
    assert (await put_secret(client, owner.headers, "SMTP_PASSWORD", "pw")).status_code == 201
    ok = await client.post(TASKS, json={"type": "mailer", "input": {}}, headers=owner.headers)
    assert ok.status_code == 202
    deleted = await client.delete("/api/v1/secrets/API_TOKEN", headers=owner.headers)
    assert deleted.status_code == 204
    refused = await client.post(TASKS, json={"type": "mailer", "input": {}}, headers=owner.headers)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "secrets.API_TOKEN"


async def test_plan_limits_are_checked_first_and_types_without_secrets_need_none(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    heavy = await client.post(TASKS, json={"type": "heavy", "input": {}}, headers=owner.headers)
    assert heavy.status_code == 402, heavy.text
    assert heavy.json()["error"]["code"] == "plan_limit_exceeded"
    with vault_statements(ctx) as statements:
        plain = await client.post(TASKS, json={"type": "plain", "input": {}}, headers=owner.headers)
    assert plain.status_code == 202, plain.text
    assert statements == []


async def test_task_types_list_the_secrets_they_need(client: httpx.AsyncClient) -> None:
    types = {t["name"]: t for t in (await client.get("/api/v1/task-types")).json()}
    assert types["mailer"]["secrets"] == ["SMTP_PASSWORD", "API_TOKEN"]
    assert types["plain"]["secrets"] == []
