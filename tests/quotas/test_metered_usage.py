"""GET /usage reports the usage ledger by task type and metric, per organization and window."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import Task, TaskStatus, UsageRecord
from tests.conftest import SignUp


async def _record(ctx: AppContext, organization_id: str, task_type: str, **metrics: float) -> None:
    now = utcnow()
    async with ctx.sessionmaker() as session, session.begin():
        task = Task(
            organization_id=uuid.UUID(organization_id),
            type=task_type,
            status=TaskStatus.succeeded,
            input={},
            timeout_s=10,
            run_after=now,
        )
        session.add(task)
        await session.flush()
        for metric, quantity in metrics.items():
            session.add(
                UsageRecord(
                    organization_id=task.organization_id,
                    task_id=task.id,
                    task_type=task_type,
                    attempt_number=1,
                    metric=metric,
                    quantity=quantity,
                    recorded_at=now,
                )
            )


async def test_usage_sums_the_ledger_by_task_type_and_metric(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    mine, other = await signup(), await signup()
    await _record(ctx, mine.organization_id, "echo", cpu_seconds=0.5, wall_seconds=1.0)
    await _record(ctx, mine.organization_id, "echo", cpu_seconds=0.25, wall_seconds=2.0)
    await _record(ctx, mine.organization_id, "python", cpu_seconds=3.0)
    await _record(ctx, other.organization_id, "echo", cpu_seconds=100.0)

    response = await client.get("/api/v1/usage", headers=mine.headers)

    assert response.status_code == 200, response.text
    items = {(i["task_type"], i["metric"]): i for i in response.json()["metered"]["items"]}
    assert items[("echo", "cpu_seconds")]["quantity"] == 0.75
    assert items[("echo", "cpu_seconds")]["tasks"] == 2
    assert items[("echo", "wall_seconds")]["quantity"] == 3.0
    assert items[("python", "cpu_seconds")]["quantity"] == 3.0
    assert {item["aggregate"] for item in items.values()} == {"sum"}
    assert len(items) == 3  # nothing of the other organization


async def test_usage_never_sums_peak_memory_and_derives_compute_units(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    org = account.organization_id
    # Two 256 MB tasks of 2 and 3 hours: 1.25 GB-hours reserved in all.
    await _record(
        ctx, org, "python", peak_memory_mb=300.04, memory_gb_seconds=1800.0, cpu_seconds=0.1234567
    )
    await _record(
        ctx, org, "python", peak_memory_mb=120.0, memory_gb_seconds=2700.0, cpu_seconds=0.1
    )
    await _record(ctx, org, "python", **{"action:publish": 2.0, "units:pages": 0.1 + 0.2})

    response = await client.get("/api/v1/usage", headers=account.headers)

    assert response.status_code == 200, response.text
    items = {i["metric"]: i for i in response.json()["metered"]["items"]}
    assert items["peak_memory_mb"] == {
        "task_type": "python",
        "metric": "peak_memory_mb",
        "quantity": 300.0,  # the largest attempt's, to a tenth of a MB: never 420
        "aggregate": "max",
        "tasks": 2,
    }
    assert (items["memory_gb_seconds"]["quantity"], items["memory_gb_seconds"]["aggregate"]) == (
        4500.0,
        "sum",
    )
    assert items["compute_units"] == {
        "task_type": "python",
        "metric": "compute_units",
        "quantity": 1.25,
        "aggregate": "sum",
        "tasks": 2,
    }
    assert items["cpu_seconds"]["quantity"] == 0.223  # to the millisecond
    assert items["action:publish"]["quantity"] == 2
    assert items["units:pages"]["quantity"] == 0.3  # no float noise


async def test_usage_window_excludes_what_is_outside_it(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    await _record(ctx, account.organization_id, "echo", cpu_seconds=1.0)
    later = (utcnow() + timedelta(hours=1)).isoformat()
    much_later = (utcnow() + timedelta(hours=2)).isoformat()

    empty = await client.get(
        "/api/v1/usage", params={"start": later, "end": much_later}, headers=account.headers
    )
    backwards = await client.get(
        "/api/v1/usage", params={"start": much_later, "end": later}, headers=account.headers
    )

    assert empty.json()["metered"]["items"] == []
    assert backwards.status_code == 422
    assert backwards.json()["error"]["field"] == "end"


async def test_a_window_at_the_calendars_edge_or_over_a_year_is_a_clear_422(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    for start, end in (
        ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"),
        ("2026-01-01T00:00:00Z", "2027-06-01T00:00:00Z"),
    ):
        response = await client.get(
            "/api/v1/usage", params={"start": start, "end": end}, headers=account.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "start"
    a_year = {"start": "2026-01-01T00:00:00Z", "end": "2027-01-01T00:00:00Z"}
    assert (await client.get("/api/v1/usage", params=a_year, headers=account.headers)).is_success
