"""`/metrics` after real work: the database's numbers read at scrape time, the engine's
counters and histograms observed where attempts end, requests under their route template."""

from __future__ import annotations

import uuid

import httpx

from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.models import TaskStatus
from saassy.runtime.fake import FakeRuntime
from tests.conftest import SignUp
from tests.dispatch.support import insert_tasks, wait_for_status
from tests.observability.conftest import samples, value


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


async def test_a_scrape_after_a_task_ran_counts_it_and_reads_the_queue(
    ctx: AppContext,
    client: httpx.AsyncClient,
    signup: SignUp,
    engine: TaskEngine,
    fake_runtime: FakeRuntime,
) -> None:
    account = await signup()
    org = uuid.UUID(account.organization_id)
    before = await scrape(client)
    succeeded = {"task_type": "noop", "outcome": "succeeded"}

    [ran] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, org)
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [ran])
    # Due in an hour: it stays queued, and so in the queue's numbers.
    await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, org, run_after_offset_s=3600)
    after = await scrape(client)

    assert value(after, "saassy_database_up") == 1
    assert value(after, "saassy_queued_tasks", organization=str(org), task_type="noop") == 1
    assert value(after, "saassy_queued_tasks_due") == 0
    assert value(after, "saassy_oldest_queued_task_age_seconds") > 0
    assert value(after, "saassy_live_attempts") == 0
    assert value(after, "saassy_outbox_backlog", outbox="email", state="pending") >= 0
    for name, labels in [
        ("saassy_attempts_total", succeeded),
        ("saassy_task_duration_seconds_count", succeeded),
        ("saassy_sandbox_start_seconds_count", {"runtime": "fake"}),
        ("saassy_dispatch_lag_seconds_count", {}),
    ]:
        assert value(after, name, **labels) == value(before, name, **labels) + 1, name


async def test_queue_depth_is_per_organization_and_task_type(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp
) -> None:
    first, second = await signup(), await signup()
    catalog = ctx.settings.catalog
    await insert_tasks(ctx.sessionmaker, catalog, first.organization_id, 3)
    await insert_tasks(ctx.sessionmaker, catalog, first.organization_id, 1, type="flaky")
    await insert_tasks(ctx.sessionmaker, catalog, second.organization_id, 2)
    text = await scrape(client)
    queued = {
        dict(labels)["organization"] + "/" + dict(labels)["task_type"]: count
        for (name, labels), count in samples(text).items()
        if name == "saassy_queued_tasks"
    }
    assert queued == {
        f"{first.organization_id}/noop": 3,
        f"{first.organization_id}/flaky": 1,
        f"{second.organization_id}/noop": 2,
    }
    assert value(text, "saassy_queued_tasks_due") == 6


async def test_requests_are_labelled_by_route_template_never_by_path(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    template = {"method": "GET", "route": "/api/v1/tasks/{task_id}", "status": "200"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    before = await scrape(client)

    for _ in range(2):
        response = await client.get(f"/api/v1/tasks/{task_id}", headers=account.headers)
        assert response.status_code == 200
    for path in ("/no/such/page", f"/no/such/{uuid.uuid4()}"):
        assert (await client.get(path)).status_code == 404
    assert (await client.get("/static/saassy.css")).status_code == 200
    await client.request("BREW", f"/no/such/{uuid.uuid4()}")
    text = await scrape(client)

    assert value(text, "saassy_http_requests_total", **template) == (
        value(before, "saassy_http_requests_total", **template) + 2
    )
    assert value(text, "saassy_http_requests_total", **unmatched) == (
        value(before, "saassy_http_requests_total", **unmatched) + 2
    )
    latency = {"method": "GET", "route": "/api/v1/tasks/{task_id}"}
    assert value(text, "saassy_http_request_duration_seconds_count", **latency) >= 2
    static = {"method": "GET", "route": "/static/{path}", "status": "200"}
    assert value(text, "saassy_http_requests_total", **static) >= 1
    assert (
        value(text, "saassy_http_request_duration_seconds_count", method="OTHER", route="unmatched")
        >= 1
    )
    assert "BREW" not in text
    assert str(task_id) not in text
    assert "/no/such" not in text


async def test_a_task_that_does_not_run_yet_shows_as_due_and_waiting(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(
        ctx.sessionmaker, ctx.settings.catalog, account.organization_id, run_after_offset_s=-30
    )
    await wait_for_status(ctx.sessionmaker, [task_id], [TaskStatus.queued])
    text = await scrape(client)
    assert value(text, "saassy_queued_tasks_due") == 1
    assert value(text, "saassy_oldest_due_task_wait_seconds") >= 30
