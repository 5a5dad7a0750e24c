"""Progress lines show on the task and on the organization's events while the program runs."""

from __future__ import annotations

import uuid

import httpx

from saassy.context import AppContext
from saassy.events.bus import TaskEvent
from saassy.models import TaskStatus
from tests.conftest import SignUp
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import insert_tasks, wait_for_status
from tests.runtime.conftest import require_isolation
from tests.runtime.support import own_process_runtime


async def test_progress_is_shown_live_and_kept_at_the_end(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, engine_factory: EngineFactory
) -> None:
    account = await signup()
    org = uuid.UUID(account.organization_id)
    async with own_process_runtime() as runtime:
        require_isolation(runtime)
        engine = engine_factory(runtime)
        await engine.start()
        seen: list[TaskEvent] = []
        async with engine.events.subscribe(org) as subscription:
            [task_id] = await insert_tasks(
                ctx.sessionmaker, ctx.settings.catalog, org, type="progressive"
            )
            engine.notify_submitted()
            while not any(e.kind == "task.progress" and e.data["percent"] == 60 for e in seen):
                event = await subscription.get(10)
                assert event is not None, seen
                seen.append(event)
            running = await client.get(f"/api/v1/tasks/{task_id}", headers=account.headers)
            await wait_for_status(ctx.sessionmaker, [task_id], timeout_s=20)

    body = running.json()
    assert body["status"] == TaskStatus.running
    assert body["progress"]["percent"] == 60
    assert body["progress"]["message"] is None
    assert body["progress"]["attempt"] == 1
    shown = [(e.data["percent"], e.data["message"]) for e in seen if e.kind == "task.progress"]
    assert shown == [(10, "warming up"), (60, None)]
    final = (await client.get(f"/api/v1/tasks/{task_id}", headers=account.headers)).json()
    assert final["status"] == "succeeded"
    assert (final["progress"]["percent"], final["progress"]["message"]) == (100, "done")
    listed = (await client.get("/api/v1/tasks", headers=account.headers)).json()
    assert listed["items"][0]["progress"]["percent"] == 100
