"""Submitting tasks: validation naming the field, admission against the plan, quotas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from saassy.context import AppContext
from saassy.kit.time import next_month_start, utcnow
from saassy.models import QuotaReservation, ReservationStatus, Task
from saassy.tasks.admission import MAX_INPUT_BYTES
from tests.conftest import SignUp
from tests.tasks.conftest import Tenant

TASKS = "/api/v1/tasks"


def deeply_nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


async def stored_task(ctx: AppContext, task_id: str) -> Task:
    async with ctx.sessionmaker() as session:
        task = await session.get(Task, uuid.UUID(task_id))
    assert task is not None
    return task


async def test_task_types_show_what_a_customer_needs(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/task-types")
    assert response.status_code == 200
    types = {t["name"]: t for t in response.json()}
    assert list(types) == ["echo", "publisher", "python", "render"]
    python = types["python"]
    assert python["input_schema"]["required"] == ["code"]
    assert python["max_timeout_s"] == 3600
    assert python["retries"] == 2
    assert python["resources"]["memory_mb"] == 256
    assert python["network"] is False
    assert types["publisher"]["actions"] == ["publish"]
    assert "command" not in python
    assert "python_runner" not in response.text


async def test_submit_queues_a_task(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()
    before = utcnow()
    response = await client.post(
        TASKS,
        json={"type": "python", "input": {"code": "print(1)", "args": ["x"]}, "priority": 5},
        headers=org.headers,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued"
    assert body["type"] == "python"
    assert body["input"] == {"code": "print(1)", "args": ["x"]}
    assert body["priority"] == 5
    assert body["timeout_s"] == 60  # the type's default (120) capped by the free plan's 60
    assert body["max_attempts"] == 3
    assert body["attempts"] == []
    assert body["result"] is None
    assert body["usage"]["cpu_seconds"] == 0
    assert response.headers["Location"] == f"{TASKS}/{body['id']}"
    assert datetime.fromisoformat(body["created_at"]) >= before

    task = await stored_task(ctx, body["id"])
    assert task.organization_id == org.organization_id
    assert task.run_after <= utcnow()
    assert task.submitted_by_api_key_id is not None
    assert task.submitted_by_user_id is None
    async with ctx.sessionmaker() as session:
        reservation = await session.get(QuotaReservation, task.quota_reservation_id)
    assert reservation is not None
    assert (reservation.metric, reservation.status) == ("tasks", ReservationStatus.reserved)


async def test_a_signed_in_user_submits_to_their_personal_organization(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    response = await client.post(
        TASKS, json={"type": "echo", "input": {"n": 1}}, headers=account.headers
    )
    assert response.status_code == 202, response.text
    task = await stored_task(ctx, response.json()["id"])
    assert str(task.organization_id) == account.organization_id
    assert str(task.submitted_by_user_id) == account.user_id


async def test_unknown_type_is_422_on_type(client: httpx.AsyncClient, tenant: Tenant) -> None:
    org = await tenant()
    response = await client.post(TASKS, json={"type": "nope", "input": {}}, headers=org.headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("unknown_task_type", "type")
    assert "echo" in error["details"]["known_types"]


@pytest.mark.parametrize(
    ("task_input", "field", "in_message"),
    [
        ({}, "input.code", "'code' is a required property"),
        ({"code": 42}, "input.code", "is not of type 'string'"),
        ({"code": ""}, "input.code", "should be non-empty"),
        ({"code": "x", "args": ["a", 7]}, "input.args.1", "is not of type 'string'"),
        ({"code": "x", "extra": 1}, "input", "Additional properties"),
        ("print(1)", "input", "is not of type 'object'"),
    ],
)
async def test_input_is_validated_against_the_type_schema(
    client: httpx.AsyncClient, tenant: Tenant, task_input: Any, field: str, in_message: str
) -> None:
    org = await tenant()
    response = await client.post(
        TASKS, json={"type": "python", "input": task_input}, headers=org.headers
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["field"] == field
    assert in_message in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({}, 422, "validation_error", "type"),
        ({"type": ""}, 422, "validation_error", "type"),
        ({"type": "x" * 65}, 422, "validation_error", "type"),
        ({"type": 5}, 422, "validation_error", "type"),
        ({"type": "echo", "timeout_s": 0}, 422, "validation_error", "timeout_s"),
        ({"type": "echo", "timeout_s": "soon"}, 422, "validation_error", "timeout_s"),
        ({"type": "echo", "timeout_s": 601}, 422, "timeout_too_long", "timeout_s"),
        ({"type": "echo", "priority": 101}, 422, "validation_error", "priority"),
        ({"type": "echo", "priority": 1.5}, 422, "validation_error", "priority"),
        ({"type": "echo", "input": "x" * (MAX_INPUT_BYTES + 1)}, 413, "input_too_large", "input"),
        ({"type": "echo", "input": "x" * 1_000_000}, 413, "input_too_large", "input"),
        ({"type": "echo", "input": {"x": deeply_nested(65)}}, 422, "input_too_deep", "input"),
    ],
)
async def test_bad_submissions(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    body: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    org = await tenant()
    response = await client.post(TASKS, json=body, headers=org.headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    async with ctx.sessionmaker() as session:
        assert (await session.scalars(select(Task))).all() == []


async def test_not_json_and_no_credentials(client: httpx.AsyncClient, tenant: Tenant) -> None:
    org = await tenant()
    broken = await client.post(
        TASKS, content=b"{not json", headers=org.headers | {"Content-Type": "application/json"}
    )
    assert broken.status_code == 400
    anonymous = await client.post(TASKS, json={"type": "echo"})
    assert anonymous.status_code == 401


async def test_nesting_up_to_the_limit_is_fine(client: httpx.AsyncClient, tenant: Tenant) -> None:
    org = await tenant()
    task_input = {"x": deeply_nested(63)}  # the object itself is the 64th level
    response = await client.post(
        TASKS, json={"type": "echo", "input": task_input}, headers=org.headers
    )
    assert response.status_code == 202, response.text
    assert response.json()["input"] == task_input
    deeper = b'{"type": "echo", "input": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    refused = await client.post(
        TASKS, content=deeper, headers=org.headers | {"Content-Type": "application/json"}
    )
    assert refused.status_code == 400  # the JSON parser gives up first: never a 500


async def test_nan_in_input_is_422(client: httpx.AsyncClient, tenant: Tenant) -> None:
    org = await tenant()
    response = await client.post(
        TASKS,
        content=b'{"type": "echo", "input": {"x": NaN}}',
        headers=org.headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "input"


@pytest.mark.parametrize(
    ("task_input", "field"),
    [
        (b'"\\ud800"', "input"),
        (b'{"x": "\\ud800"}', "input.x"),
        (b'{"a": [1, {"b": "ok \\udfff ok"}]}', "input.a.1.b"),
        (b'{"fine": "\\ud83d\\ude00", "key \\udc00": 1}', "input"),  # a pair is fine; a key
    ],
)
async def test_a_lone_surrogate_in_input_is_named_as_such(
    client: httpx.AsyncClient, tenant: Tenant, task_input: bytes, field: str
) -> None:
    org = await tenant()
    response = await client.post(
        TASKS,
        content=b'{"type": "echo", "input": ' + task_input + b"}",
        headers=org.headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: holds a lone surrogate")
    assert "not valid Unicode" in error["message"]


async def test_timeout_over_the_plan_is_402(client: httpx.AsyncClient, tenant: Tenant) -> None:
    org = await tenant()
    response = await client.post(
        TASKS, json={"type": "python", "input": {"code": "x"}, "timeout_s": 61}, headers=org.headers
    )
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "plan_limit_exceeded"
    assert error["field"] == "timeout_s"
    assert error["details"] == {
        "limit": "max_task_duration_s",
        "requested": 61,
        "allowed": 60,
        "plan": "free",
    }
    pro = await tenant(plan="pro")
    ok = await client.post(
        TASKS, json={"type": "python", "input": {"code": "x"}, "timeout_s": 61}, headers=pro.headers
    )
    assert ok.status_code == 202
    assert ok.json()["timeout_s"] == 61


async def test_resources_over_the_plan_are_402(client: httpx.AsyncClient, tenant: Tenant) -> None:
    org = await tenant()
    response = await client.post(TASKS, json={"type": "render"}, headers=org.headers)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "plan_limit_exceeded"
    assert error["details"]["limit"] == "resources.memory_mb"
    assert (error["details"]["requested"], error["details"]["allowed"]) == (2048, 512)
    # A contract's override raises the limit.
    bigger = await tenant(overrides={"resources": {"memory_mb": 4096, "cpus": 2}})
    ok = await client.post(TASKS, json={"type": "render"}, headers=bigger.headers)
    assert ok.status_code == 202, ok.text


async def test_monthly_quota_exhausted_is_402_with_reset_time(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant(overrides={"tasks_per_month": 2})
    for _ in range(2):
        assert (
            await client.post(TASKS, json={"type": "echo"}, headers=org.headers)
        ).status_code == 202
    response = await client.post(TASKS, json={"type": "echo"}, headers=org.headers)
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["code"] == "quota_exceeded"
    assert error["details"] == {
        "metric": "tasks",
        "limit": 2,
        "used": 2,
        "resets_at": next_month_start(datetime.now(UTC)).isoformat(),
    }
    async with ctx.sessionmaker() as session:
        assert len((await session.scalars(select(Task))).all()) == 2


async def test_declared_actions_take_the_daily_cap(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()  # publish: 2 a day on the free plan
    ids = []
    for _ in range(2):
        response = await client.post(TASKS, json={"type": "publisher"}, headers=org.headers)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    refused = await client.post(TASKS, json={"type": "publisher"}, headers=org.headers)
    assert refused.status_code == 402
    assert refused.json()["error"]["details"]["metric"] == "action:publish"
    # The refused task's monthly unit went back with the rollback.
    usage = (await client.get("/api/v1/usage", headers=org.headers)).json()
    assert {q["metric"]: q["used"] for q in usage["quotas"]}["tasks"] == 2
    task = await stored_task(ctx, ids[0])
    assert task.action_reservations is not None
    async with ctx.sessionmaker() as session:
        reservation = await session.get(
            QuotaReservation, uuid.UUID(task.action_reservations["publish"])
        )
    assert reservation is not None
    assert reservation.metric == "action:publish"
