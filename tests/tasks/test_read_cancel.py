"""Listing, reading and canceling tasks."""

from __future__ import annotations

import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from saassy.context import AppContext
from saassy.dispatch.outcome import AttemptOutcome
from saassy.kit.time import utcnow
from saassy.models import (
    AttemptStatus,
    QuotaReservation,
    ReservationStatus,
    Task,
    TaskAttempt,
    TaskStatus,
    UsageRecord,
)
from saassy.runtime.base import Usage
from tests.tasks.conftest import Tenant, TenantKey

TASKS = "/api/v1/tasks"


async def submit(client: httpx.AsyncClient, org: TenantKey, **body: Any) -> dict[str, Any]:
    response = await client.post(TASKS, json={"type": "echo", **body}, headers=org.headers)
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


async def set_task(ctx: AppContext, task_id: str, **values: Any) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(Task).where(Task.id == uuid.UUID(task_id)).values(**values))


async def reservation_status(ctx: AppContext, reservation_id: uuid.UUID | str) -> str:
    async with ctx.sessionmaker() as session:
        reservation = await session.get(QuotaReservation, uuid.UUID(str(reservation_id)))
    assert reservation is not None
    return reservation.status


async def test_list_is_newest_first_with_cursor_pages(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    org = await tenant()
    ids = [(await submit(client, org, input={"n": n}))["id"] for n in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get(TASKS, params=params, headers=org.headers)).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        assert "input" not in page["items"][0]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert pages == 3


async def test_list_filters_by_status_type_and_time(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()
    echo = await submit(client, org)
    python = await submit(client, org, type="python", input={"code": "x"})
    done = await submit(client, org)
    await set_task(ctx, done["id"], status=TaskStatus.succeeded)
    old = await submit(client, org)
    await set_task(ctx, old["id"], created_at=utcnow() - timedelta(days=3))

    async def listed(**params: Any) -> set[str]:
        response = await client.get(TASKS, params=params, headers=org.headers)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["items"]}

    everything = {echo["id"], python["id"], done["id"], old["id"]}
    assert await listed() == everything
    assert await listed(type="python") == {python["id"]}
    assert await listed(status="succeeded") == {done["id"]}
    assert await listed(status=["succeeded", "queued"]) == everything
    yesterday = (utcnow() - timedelta(days=1)).isoformat()
    assert await listed(created_after=yesterday) == everything - {old["id"]}
    assert await listed(created_before=yesterday) == {old["id"]}
    assert await listed(created_before=yesterday, type="python") == set()
    # Bounds past what a datetime holds once in UTC lie before or after every task.
    assert await listed(created_after="0001-01-01T00:00:00+05:00") == everything
    assert await listed(created_before="9999-12-31T23:00:00-05:00") == everything
    assert await listed(created_before="0001-01-01T00:00:00+01:00") == set()
    bad = await client.get(TASKS, params={"status": "sleeping"}, headers=org.headers)
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "status.0")
    other = await tenant()
    assert (await client.get(TASKS, headers=other.headers)).json()["items"] == []


async def test_get_shows_attempts_result_and_usage(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()
    task = await submit(client, org, input={"hello": "world"})
    task_id = uuid.UUID(task["id"])
    now = utcnow()
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(Task)
            .where(Task.id == task_id)
            .values(
                status=TaskStatus.succeeded,
                result={"hello": "world"},
                attempt_count=2,
                started_at=now - timedelta(seconds=9),
                finished_at=now,
            )
        )
        common = {"task_id": task_id, "organization_id": org.organization_id}
        session.add_all(
            [
                TaskAttempt(
                    **common,
                    number=1,
                    status=AttemptStatus.failed,
                    exit_code=1,
                    end_reason="exited",
                    error="exit code 1",
                    started_at=now - timedelta(seconds=9),
                    finished_at=now - timedelta(seconds=6),
                    cpu_seconds=1.5,
                    peak_memory_bytes=64 * 1024 * 1024,
                    wall_seconds=3.0,
                ),
                # Measured only in the ledger, not on the attempt's row.
                TaskAttempt(**common, number=2, status=AttemptStatus.succeeded, exit_code=0),
            ]
        )
        # The ledger rows the engine writes for such an attempt.
        outcome = AttemptOutcome(
            AttemptStatus.succeeded,
            usage=Usage(cpu_seconds=0.5, peak_memory_bytes=32 * 1024 * 1024, wall_seconds=2.0),
            actions={"publish": 1},
            units={"pages": 12},
        )
        for item in outcome.metered():
            session.add(
                UsageRecord(
                    **common,
                    task_type="echo",
                    attempt_number=2,
                    metric=item.metric,
                    quantity=item.quantity,
                    recorded_at=now,
                )
            )

    response = await client.get(f"{TASKS}/{task_id}", headers=org.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "succeeded"
    assert body["result"] == {"hello": "world"}
    assert body["input"] == {"hello": "world"}
    assert body["finished_at"] is not None
    first, second = body["attempts"]
    assert (first["number"], first["exit_code"], first["error"]) == (1, 1, "exit code 1")
    assert first["usage"] == {"cpu_seconds": 1.5, "peak_memory_mb": 64.0, "wall_seconds": 3.0}
    assert second["usage"] == {"cpu_seconds": 0.5, "peak_memory_mb": 32.0, "wall_seconds": 2.0}
    assert body["usage"] == {
        "cpu_seconds": 2.0,
        "peak_memory_mb": 64.0,
        "wall_seconds": 5.0,
        "metered": {"action:publish": 1.0, "units:pages": 12.0},
    }


async def test_unknown_and_malformed_ids(client: httpx.AsyncClient, tenant: Tenant) -> None:
    org = await tenant()
    missing = await client.get(f"{TASKS}/{uuid.uuid4()}", headers=org.headers)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    malformed = await client.get(f"{TASKS}/not-a-uuid", headers=org.headers)
    assert (malformed.status_code, malformed.json()["error"]["field"]) == (422, "task_id")


async def test_cancel_a_queued_task_ends_it_and_gives_the_quota_back(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()
    task = await submit(client, org, type="publisher")
    response = await client.post(f"{TASKS}/{task['id']}/cancel", headers=org.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "canceled"
    assert body["error_code"] == "canceled"
    assert body["finished_at"] is not None
    assert body["cancel_requested_at"] is not None
    async with ctx.sessionmaker() as session:
        stored = await session.get(Task, uuid.UUID(task["id"]))
    assert stored is not None
    assert stored.quota_reservation_id is not None
    assert stored.action_reservations
    assert await reservation_status(ctx, stored.quota_reservation_id) == "released"
    publish = stored.action_reservations["publish"]
    assert await reservation_status(ctx, publish) == ReservationStatus.released
    usage = (await client.get("/api/v1/usage", headers=org.headers)).json()
    assert {q["metric"]: q["used"] for q in usage["quotas"]}["tasks"] == 0

    again = await client.post(f"{TASKS}/{task['id']}/cancel", headers=org.headers)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "task_finished")


@pytest.mark.parametrize("live", [TaskStatus.dispatched, TaskStatus.running])
async def test_cancel_a_live_task_asks_its_executor(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    live: TaskStatus,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org = await tenant()
    task = await submit(client, org)
    await set_task(ctx, task["id"], status=live, attempt_count=1)
    woken: list[uuid.UUID] = []

    async def on_task_cancel(task_id: uuid.UUID) -> None:
        woken.append(task_id)

    # A stand-in engine: this test is about the API asking the executor, not the executor.
    stand_in = SimpleNamespace(executor=SimpleNamespace(cancel=on_task_cancel))
    monkeypatch.setattr(ctx, "task_engine", stand_in)
    response = await client.post(f"{TASKS}/{task['id']}/cancel", headers=org.headers)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == live
    first_request = body["cancel_requested_at"]
    assert first_request is not None
    assert body["finished_at"] is None
    assert woken == [uuid.UUID(task["id"])]
    # The quota stays reserved: the executor settles it when the attempt ends.
    async with ctx.sessionmaker() as session:
        stored = await session.get(Task, uuid.UUID(task["id"]))
    assert stored is not None
    assert stored.quota_reservation_id is not None
    assert await reservation_status(ctx, stored.quota_reservation_id) == "reserved"
    again = await client.post(f"{TASKS}/{task['id']}/cancel", headers=org.headers)
    assert again.status_code == 202
    assert again.json()["cancel_requested_at"] == first_request


async def test_cancel_while_waiting_for_a_retry_counts_what_ran(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()
    task = await submit(client, org, type="publisher")
    await set_task(ctx, task["id"], attempt_count=1)  # attempt 1 failed, the retry is queued
    response = await client.post(f"{TASKS}/{task['id']}/cancel", headers=org.headers)
    assert response.status_code == 200
    async with ctx.sessionmaker() as session:
        stored = await session.get(Task, uuid.UUID(task["id"]))
    assert stored is not None
    assert stored.quota_reservation_id
    assert stored.action_reservations
    assert await reservation_status(ctx, stored.quota_reservation_id) == "settled"
    assert await reservation_status(ctx, stored.action_reservations["publish"]) == "released"


@pytest.mark.parametrize(
    "ended", [TaskStatus.succeeded, TaskStatus.failed, TaskStatus.timed_out, TaskStatus.canceled]
)
async def test_cancel_an_ended_task_is_409(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant, ended: TaskStatus
) -> None:
    org = await tenant()
    task = await submit(client, org)
    await set_task(ctx, task["id"], status=ended)
    response = await client.post(f"{TASKS}/{task['id']}/cancel", headers=org.headers)
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["details"]["status"]) == ("task_finished", ended)


async def test_another_tenant_gets_404_for_every_task_endpoint(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    victim, attacker = await tenant(), await tenant()
    task = await submit(client, victim, input={"secret": "victim-data-8472"})
    for method, path in [
        ("GET", f"{TASKS}/{task['id']}"),
        ("POST", f"{TASKS}/{task['id']}/cancel"),
    ]:
        response = await client.request(method, path, headers=attacker.headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert "victim-data-8472" not in response.text
    listed = await client.get(TASKS, headers=attacker.headers)
    assert listed.json()["items"] == []
    named = await client.get(
        TASKS, headers=attacker.headers | {"Saassy-Organization": str(victim.organization_id)}
    )
    assert named.status_code == 404
    mine = await client.get(f"{TASKS}/{task['id']}", headers=victim.headers)
    assert mine.json()["status"] == "queued"
