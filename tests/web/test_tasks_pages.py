"""The task pages: list with filters, keyset paging and bulk actions; the form generated from a
type's schema; the task page with its timeline, logs, result, artifacts and live feed."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine, build_task_engine
from saassy.kit.time import utcnow
from saassy.models import Task, TaskLogChunk, TaskStatus
from saassy.runtime.base import OutputLine
from saassy.runtime.fake import FakeRuntime, FakeScript
from tests.web.support import browser_for, csrf_token, sign_up, submit

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
PYTHON_CODE = "print('hi')\nif True:\n    print(2)\n"


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as client:
        await sign_up(client)
        yield client


async def organization_of(ctx: AppContext, browser: httpx.AsyncClient) -> uuid.UUID:
    """The signed-in browser's organization: the one its tasks go to."""
    page = await browser.get("/app")
    found = re.search(r'<option value="([0-9a-f-]{36})" selected>', page.text)
    assert found, page.text
    return uuid.UUID(found.group(1))


async def submit_task(browser: httpx.AsyncClient, data: dict[str, str]) -> httpx.Response:
    return await submit(browser, "/app/tasks/new", data, page="/app/tasks/new")


def task_id_of(response: httpx.Response) -> uuid.UUID:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/app/tasks/")
    return uuid.UUID(location.rsplit("/", 1)[-1])


async def task_row(ctx: AppContext, task_id: uuid.UUID) -> Task:
    async with ctx.sessionmaker() as session:
        task = await session.get(Task, task_id)
        assert task is not None
        return task


# -- New task --------------------------------------------------------------------------------


async def test_the_form_follows_the_schema_and_submits_a_python_task(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    page = await browser.get("/app/tasks/new?type=python")
    assert page.status_code == 200
    # `code` is marked "format": "code": a monospace editor; `args` an array of strings: lines.
    assert re.search(r'<textarea id="f-input.code" name="input.code" class="code"', page.text)
    assert 'id="f-input.args"' in page.text
    assert "Python 3 source, run as __main__." in page.text  # the description as help
    assert 'name="timeout_s"' in page.text
    assert 'name="priority"' in page.text

    response = await submit_task(
        browser,
        {
            "type": "python",
            "input.code": PYTHON_CODE.replace("\n", "\r\n"),
            "input.args": "2\r\n40\r\n",
            "timeout_s": "20",
            "priority": "5",
        },
    )
    task = await task_row(ctx, task_id_of(response))
    assert task.type == "python"
    assert task.input == {"code": PYTHON_CODE, "args": ["2", "40"]}
    assert (task.timeout_s, task.priority, task.status) == (20, 5, TaskStatus.queued)
    detail = await browser.get(response.headers["location"])
    assert detail.status_code == 200
    assert "Task queued (python)." in detail.text


async def test_an_invalid_form_shows_the_error_beside_its_field(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    missing = await submit_task(browser, {"type": "python", "input.code": "", "input.args": "x"})
    assert missing.status_code == 422
    error = re.search(r'<p class="error" id="f-input.code-error">([^<]*)</p>', missing.text)
    assert error
    assert "required" in error.group(1)
    assert 'aria-describedby="f-input.code-help f-input.code-error"' in missing.text
    assert ">x</textarea>" in missing.text  # what was typed is kept

    too_long = await submit_task(
        browser, {"type": "python", "input.code": "print(1)", "timeout_s": "600"}
    )
    assert too_long.status_code == 402  # longer than the Free plan's 60 s
    error = re.search(r'<p class="error" id="f-timeout_s-error">([^<]*)</p>', too_long.text)
    assert error
    assert "Free plan allows (60 s)" in error.group(1).replace("&#39;", "'")

    bad_priority = await submit_task(
        browser, {"type": "python", "input.code": "print(1)", "priority": "1000"}
    )
    assert bad_priority.status_code == 422
    assert 'id="f-priority-error"' in bad_priority.text

    bad_json = await submit_task(browser, {"type": "echo", "input": "{not json"})
    assert bad_json.status_code == 422
    assert 'id="f-input-error">Not valid JSON' in bad_json.text
    async with ctx.sessionmaker() as session:
        assert (await session.execute(select(Task.id))).first() is None


async def test_a_quota_refusal_says_when_the_quota_resets(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    organization_id = await organization_of(ctx, browser)
    await fill_quota(ctx, organization_id, 100)  # the Free plan's 100 tasks a month
    refused = await submit_task(browser, {"type": "echo", "input": '{"a": 1}'})
    assert refused.status_code == 402
    assert "100 tasks this month are used up (100 of 100)" in refused.text
    assert "the quota resets on 1 " in refused.text
    assert "Wait until then or upgrade" in refused.text


async def fill_quota(ctx: AppContext, organization_id: uuid.UUID, count: int) -> None:
    from saassy.quotas import service as quotas

    async with ctx.sessionmaker() as session, session.begin():
        for _ in range(count):
            await quotas.reserve(session, ctx.settings.catalog, organization_id, "tasks")


async def test_a_form_without_its_csrf_token_is_refused(browser: httpx.AsyncClient) -> None:
    response = await browser.post("/app/tasks/new", data={"type": "echo", "input": "{}"})
    assert response.status_code == 403
    wrong = await browser.post(
        "/app/tasks/new", data={"type": "echo", "input": "{}", "csrf_token": "0" * 64}
    )
    assert wrong.status_code == 403
    assert (await browser.post("/app/tasks/bulk", data={"action": "cancel"})).status_code == 403


# -- The list ---------------------------------------------------------------------------------


async def insert_tasks(
    ctx: AppContext, organization_id: uuid.UUID, count: int, **values: Any
) -> list[uuid.UUID]:
    """Tasks straight in the database, one second apart, newest last."""
    start = utcnow() - timedelta(seconds=count)
    ids = []
    async with ctx.sessionmaker() as session, session.begin():
        for n in range(count):
            task = Task(
                organization_id=organization_id,
                type=values.get("type", "echo"),
                status=values.get("status", TaskStatus.queued),
                priority=0,
                input=values.get("input", {"n": n}),
                timeout_s=10,
                max_attempts=1,
                run_after=start,
                created_at=values.get("created_at", start + timedelta(seconds=n)),
            )
            session.add(task)
            await session.flush()
            ids.append(task.id)
    return ids


ROW = re.compile(r'<tr class="row-link" data-href="/app/tasks/([0-9a-f-]{36})"')
NEXT = re.compile(r'rel="next" href="([^"]+)"')
PREV = re.compile(r'rel="prev" href="([^"]+)"')


async def test_keyset_pages_cover_every_task_once_both_ways(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    organization_id = await organization_of(ctx, browser)
    ids = await insert_tasks(ctx, organization_id, 120)
    # Several with the very same creation time: the id breaks the tie without gaps.
    same = utcnow() - timedelta(hours=1)
    ids += await insert_tasks(ctx, organization_id, 7, created_at=same)

    seen: list[str] = []
    pages = []
    url: str | None = "/app/tasks"
    while url:
        page = await browser.get(url.replace("&amp;", "&"))
        assert page.status_code == 200
        rows = ROW.findall(page.text)
        assert 0 < len(rows) <= 50
        pages.append((url, rows))
        seen += rows
        found = NEXT.search(page.text)
        url = found.group(1) if found else None
    assert len(seen) == len(set(seen)) == len(ids)
    assert set(seen) == {str(i) for i in ids}
    assert seen[0] == str(ids[119])  # newest first

    # Back from the last page with Previous: the same pages, in reverse.
    last = await browser.get(pages[-1][0].replace("&amp;", "&"))
    previous = PREV.search(last.text)
    assert previous
    back = await browser.get(previous.group(1).replace("&amp;", "&"))
    assert ROW.findall(back.text) == pages[-2][1]


async def test_filters_narrow_the_list_and_stay_in_the_url(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    organization_id = await organization_of(ctx, browser)
    queued = await insert_tasks(ctx, organization_id, 3)
    failed = await insert_tasks(ctx, organization_id, 2, status=TaskStatus.failed, type="python")
    old = await insert_tasks(ctx, organization_id, 1, created_at=utcnow() - timedelta(days=40))

    page = await browser.get("/app/tasks?status=failed")
    assert set(ROW.findall(page.text)) == {str(i) for i in failed}
    assert '<option value="failed" selected>' in page.text
    page = await browser.get("/app/tasks?type=echo&status=queued")
    assert set(ROW.findall(page.text)) == {str(i) for i in queued + old}
    day = (utcnow() - timedelta(days=40)).date().isoformat()
    page = await browser.get(f"/app/tasks?from={day}&to={day}")
    assert ROW.findall(page.text) == [str(old[0])]
    assert f'value="{day}"' in page.text
    empty = await browser.get("/app/tasks?status=timed_out")
    assert "No tasks match these filters." in empty.text


async def test_the_empty_list_shows_how_to_submit(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/app/tasks")
    assert "Tasks you submit show up here" in page.text
    assert 'href="/app/tasks/new"' in page.text
    assert "api/v1/tasks" in page.text


async def bulk(browser: httpx.AsyncClient, data: dict[str, Any]) -> httpx.Response:
    token = await csrf_token(browser, "/app/tasks")
    return await browser.post("/app/tasks/bulk", data={**data, "csrf_token": token})


async def test_bulk_cancel_of_selected_tasks(browser: httpx.AsyncClient, ctx: AppContext) -> None:
    organization_id = await organization_of(ctx, browser)
    ids = await insert_tasks(ctx, organization_id, 3)
    [ended] = await insert_tasks(ctx, organization_id, 1, status=TaskStatus.succeeded)
    [untouched] = await insert_tasks(ctx, organization_id, 1)
    response = await bulk(browser, {"action": "cancel", "ids": [str(i) for i in [*ids, ended]]})
    assert response.status_code == 303
    page = await browser.get(response.headers["location"])
    assert "3 canceled, 1 had already ended." in page.text
    for task_id in ids:
        assert (await task_row(ctx, task_id)).status == TaskStatus.canceled
    assert (await task_row(ctx, untouched)).status == TaskStatus.queued


async def test_bulk_cancel_of_every_task_matching_the_filter(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    organization_id = await organization_of(ctx, browser)
    echo = await insert_tasks(ctx, organization_id, 4)
    [python] = await insert_tasks(ctx, organization_id, 1, type="python", input={"code": "1"})
    response = await bulk(browser, {"action": "cancel", "scope": "matching", "type": "echo"})
    assert response.headers["location"] == "/app/tasks?type=echo"
    page = await browser.get(response.headers["location"])
    assert "4 canceled." in page.text
    assert {(await task_row(ctx, i)).status for i in echo} == {TaskStatus.canceled}
    assert (await task_row(ctx, python)).status == TaskStatus.queued


async def test_bulk_rerun_queues_copies_within_the_quota(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    organization_id = await organization_of(ctx, browser)
    ids = await insert_tasks(ctx, organization_id, 2, status=TaskStatus.failed)
    response = await bulk(browser, {"action": "rerun", "ids": [str(i) for i in ids]})
    page = await browser.get(response.headers["location"])
    assert "2 re-run." in page.text
    async with ctx.sessionmaker() as session:
        copies = (
            (await session.execute(select(Task).where(Task.status == TaskStatus.queued)))
            .scalars()
            .all()
        )
    assert sorted(str(t.input) for t in copies) == sorted(
        [str((await task_row(ctx, i)).input) for i in ids]
    )
    # With the quota used up the re-run stops and says why.
    await fill_quota(ctx, organization_id, 98)
    refused = await bulk(browser, {"action": "rerun", "ids": [str(ids[0])]})
    page = await browser.get(refused.headers["location"])
    assert "0 re-run. Stopped: Your plan&#39;s 100 tasks this month are used up" in page.text


# -- Another tenant ---------------------------------------------------------------------------


async def test_another_tenants_task_is_not_found_on_every_page_and_action(
    app: FastAPI, browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    organization_id = await organization_of(ctx, browser)
    [task_id] = await insert_tasks(ctx, organization_id, 1, status=TaskStatus.succeeded)
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(Task).values(result={"secret": "mine"}))
    async with browser_for(app) as other:
        await sign_up(other)
        for path in (
            f"/app/tasks/{task_id}",
            f"/app/tasks/{task_id}/events",
            f"/app/tasks/{task_id}/result.json",
            f"/app/tasks/{task_id}/logs.txt",
            f"/app/tasks/{task_id}/artifacts/{uuid.uuid4()}",
            f"/app/tasks/new?from={task_id}",
            "/app/tasks/not-a-uuid",
        ):
            response = await other.get(path)
            if "new?from" in path:  # the form, without the other tenant's input
                assert response.status_code == 200
                assert "mine" not in response.text
            else:
                assert response.status_code == 404, path
        token = await csrf_token(other, "/app/tasks")
        for action in ("cancel", "rerun"):
            response = await other.post(
                f"/app/tasks/{task_id}/{action}", data={"csrf_token": token}
            )
            assert response.status_code == 404
        response = await other.post(
            "/app/tasks/bulk", data={"csrf_token": token, "action": "rerun", "ids": str(task_id)}
        )
        assert "0 re-run, 1 not found." in (await other.get("/app/tasks")).text
        assert ROW.findall((await other.get("/app/tasks")).text) == []
    async with ctx.sessionmaker() as session:
        assert len((await session.execute(select(Task.id))).all()) == 1


# -- The task page ----------------------------------------------------------------------------


async def test_payloads_in_the_input_render_inert(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    for payload in (SCRIPT, IMG):
        response = await submit_task(
            browser,
            {"type": "python", "input.code": f"print('{payload}')", "input.args": payload},
        )
        page = await browser.get(response.headers["location"])
        assert payload not in page.text
        assert "&lt;" in page.text
        assert "alert(1)" in page.text
        form = await browser.get(f"/app/tasks/new?from={task_id_of(response)}")
        assert payload not in form.text
    listing = await browser.get("/app/tasks")
    assert SCRIPT not in listing.text
    assert IMG not in listing.text


async def test_cancel_and_rerun_from_the_task_page(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    response = await submit_task(browser, {"type": "echo", "input": '{"x": 1}', "priority": "3"})
    task_id = task_id_of(response)
    page = await browser.get(f"/app/tasks/{task_id}")
    assert '<meta http-equiv="refresh" content="3">' in page.text  # not finished: reloads
    assert 'data-confirm="#cancel-dialog"' in page.text
    canceled = await submit(browser, f"/app/tasks/{task_id}/cancel", page=f"/app/tasks/{task_id}")
    assert canceled.headers["location"] == f"/app/tasks/{task_id}"
    page = await browser.get(f"/app/tasks/{task_id}")
    assert "Task canceled." in page.text
    assert 'http-equiv="refresh"' not in page.text
    assert "did not count against your quota" in page.text
    again = await submit(browser, f"/app/tasks/{task_id}/cancel", page=f"/app/tasks/{task_id}")
    assert "already ended" in (await browser.get(again.headers["location"])).text

    rerun = await submit(browser, f"/app/tasks/{task_id}/rerun", page=f"/app/tasks/{task_id}")
    new_id = task_id_of(rerun)
    assert new_id != task_id
    copy = await task_row(ctx, new_id)
    original = await task_row(ctx, task_id)
    assert (copy.type, copy.input, copy.priority, copy.timeout_s) == (
        original.type,
        original.input,
        original.priority,
        original.timeout_s,
    )
    assert copy.status == TaskStatus.queued


# -- Through the engine (fake runtime) --------------------------------------------------------


@pytest.fixture
async def engine(app: FastAPI, ctx: AppContext) -> AsyncIterator[tuple[TaskEngine, FakeRuntime]]:
    runtime = FakeRuntime()
    built = build_task_engine(
        ctx.settings,
        ctx.sessionmaker,
        runtime,
        lease=timedelta(seconds=3),
        poll_s=0.05,
        parallelism=4,
    )
    ctx.task_engine = built
    await built.start()
    yield built, runtime
    ctx.task_engine = None
    await built.stop(grace_s=0.1)


async def wait_until_ended(ctx: AppContext, task_id: uuid.UUID, timeout_s: float = 10) -> Task:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        task = await task_row(ctx, task_id)
        if TaskStatus(task.status).terminal:
            return task
        assert asyncio.get_running_loop().time() < deadline, task.status
        await asyncio.sleep(0.05)


async def test_a_finished_task_shows_its_logs_result_artifacts_and_usage(
    browser: httpx.AsyncClient, ctx: AppContext, engine: tuple[TaskEngine, FakeRuntime]
) -> None:
    built, runtime = engine
    queued = await submit_task(browser, {"type": "echo", "input": '{"hello": "world"}'})
    task_id = task_id_of(queued)
    runtime.script(
        f"task-{task_id}-attempt-1",
        FakeScript(
            output=(
                OutputLine("stdout", b"starting"),
                OutputLine("stderr", f"warn {SCRIPT}".encode()),
                OutputLine("stdout", IMG.encode()),
            ),
            files={
                "result.json": b'{"answer": 42, "html": "<script>alert(1)</script>"}',
                f"{IMG}.txt": b"x" * 2048,
                "report.csv": b"a,b\n1,2\n",
            },
        ),
    )
    built.notify_submitted()
    task = await wait_until_ended(ctx, task_id)
    assert task.status == TaskStatus.succeeded, task.error
    page = await browser.get(f"/app/tasks/{task_id}")
    assert page.status_code == 200
    text = page.text
    assert SCRIPT not in text
    assert IMG not in text
    assert '<li class="stdout" data-attempt="1">starting</li>' in text
    assert '<li class="stderr" data-attempt="1">warn &lt;script&gt;' in text
    assert "&#34;answer&#34;: 42" in text or '"answer": 42' in text
    assert "Attempt 1" in text
    assert "Queue wait" in text
    assert "report.csv" in text
    assert "2.0 KB" in text
    assert "CPU-s" in text
    assert "Peak memory" in text
    assert "It counted as one of the 100 tasks a month the Free plan includes" in text
    assert 'http-equiv="refresh"' not in text

    artifact = re.search(
        r'href="(/app/tasks/[^"]+/artifacts/[0-9a-f-]{36})" download>Download '
        r'<span class="visually-hidden">report.csv',
        text,
    )
    assert artifact
    download = await browser.get(artifact.group(1))
    assert download.status_code == 200
    assert download.content == b"a,b\n1,2\n"
    assert download.headers["content-type"] == "application/octet-stream"
    result = await browser.get(f"/app/tasks/{task_id}/result.json")
    assert result.json()["answer"] == 42
    assert "attachment" in result.headers["content-disposition"]
    logs = await browser.get(f"/app/tasks/{task_id}/logs.txt")
    assert logs.text.startswith("starting\n")

    # The live feed of an ended task: its lines (each with an id to resume from), then `end`.
    events = await browser.get(f"/app/tasks/{task_id}/events")
    assert events.headers["content-type"].startswith("text/event-stream")
    assert "id: 1-1\nevent: log\n" in events.text
    assert events.text.rstrip().endswith('event: end\ndata: {"status":"succeeded"}')
    resumed = await browser.get(f"/app/tasks/{task_id}/events", headers={"Last-Event-ID": "1-2"})
    assert "starting" not in resumed.text
    assert "warn" not in resumed.text
    assert resumed.text.count("event: log") == 1


async def test_the_live_feed_sends_status_and_log_lines_as_they_happen(
    browser: httpx.AsyncClient, ctx: AppContext, engine: tuple[TaskEngine, FakeRuntime]
) -> None:
    built, runtime = engine
    queued = await submit_task(browser, {"type": "echo", "input": "{}"})
    task_id = task_id_of(queued)
    runtime.script(
        f"task-{task_id}-attempt-1",
        FakeScript(output=(OutputLine("stdout", b"live line"),), delay_s=0.5),
    )
    received: list[str] = []

    async def follow() -> None:
        async with browser.stream("GET", f"/app/tasks/{task_id}/events") as response:
            assert response.status_code == 200
            async for chunk in response.aiter_text():
                received.append(chunk)
                if "event: end" in "".join(received):
                    return

    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    built.notify_submitted()
    await asyncio.wait_for(follower, 10)
    body = "".join(received)
    assert "event: status" in body
    assert '"data":"live line\\n"' in body or '"data":"live line"' in body
    assert 'event: end\ndata: {"status":"succeeded"}' in body


async def test_the_log_numbers_each_line_and_says_plainly_when_it_was_truncated(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    organization_id = await organization_of(ctx, browser)
    [task_id] = await insert_tasks(ctx, organization_id, 1, status=TaskStatus.failed)
    async with ctx.sessionmaker() as session, session.begin():
        for seq, (stream, data) in enumerate(
            [
                ("stdout", "one\ntwo\nthree\n"),  # a pipe flushed in one block
                ("stderr", f"{IMG}\n"),
                ("system", "[saassy] log truncated after 1 MiB\n"),
            ],
            start=1,
        ):
            session.add(
                TaskLogChunk(
                    task_id=task_id,
                    organization_id=organization_id,
                    attempt_number=1,
                    seq=seq,
                    stream=stream,
                    data=data,
                )
            )
    page = await browser.get(f"/app/tasks/{task_id}")
    lines = re.findall(r'<li class="(\w+)" data-attempt="1">([^<]*)</li>', page.text)
    assert lines[:3] == [("stdout", "one"), ("stdout", "two"), ("stdout", "three")]
    assert lines[3] == ("stderr", "&lt;img src=x onerror=alert(1)&gt;")
    assert "The log was truncated" in page.text
    assert 'data-last-event-id="1-3"' in page.text  # the live feed starts after these
