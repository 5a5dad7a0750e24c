"""A hand-made page cursor whose time has no UTC value (or is otherwise not ours) is a clean 400
on the API and a readable page (or the first page) on the dashboard, never a 500."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import SignUp
from tests.web.support import browser_for, sign_up
from tests.web.test_tasks_pages import submit_task, task_id_of

OUT_OF_RANGE = [
    ["0001-01-01T00:00:00+14:00", "00000000-0000-0000-0000-000000000000"],
    ["9999-12-31T23:59:59-14:00", "00000000-0000-0000-0000-000000000000"],
]


def cursor_of(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


BAD = [cursor_of(v) for v in OUT_OF_RANGE] + ["[" * 150, cursor_of([[[[1]]]]), "x" * 300]


@pytest.mark.parametrize("cursor", BAD)
async def test_the_api_lists_answer_400_invalid_cursor(
    client: httpx.AsyncClient, signup: SignUp, cursor: str
) -> None:
    account = await signup()
    for path in ("/api/v1/tasks", "/api/v1/secrets", "/api/v1/api-keys", "/api/v1/organizations"):
        response = await client.get(path, params={"cursor": cursor}, headers=account.headers)
        if len(cursor) > 200:  # refused by the query's own bound
            assert response.status_code == 422, (path, response.text)
            continue
        assert response.status_code == 400, (path, response.text)
        error = response.json()["error"]
        assert (error["code"], error["field"]) == ("invalid_cursor", "cursor"), path


@pytest.mark.parametrize("cursor", BAD)
async def test_dashboard_pages_never_fail_on_a_bad_cursor(app: FastAPI, cursor: str) -> None:
    async with browser_for(app) as browser:
        await sign_up(browser)
        task_id = task_id_of(await submit_task(browser, {"type": "echo", "input": "{}"}))
        for url in (
            f"/app/tasks/{task_id}?artifacts={cursor}",
            f"/app/tasks?after={cursor}",
            f"/app/tasks?before={cursor}",
            f"/app/organization/members?cursor={cursor}",
            f"/app/api-keys?cursor={cursor}",
        ):
            response = await browser.get(url)
            assert response.status_code in (200, 400), (url, response.status_code)
            if response.status_code == 400:
                assert "The cursor is not valid" in response.text, url


async def test_the_last_day_there_is_filters_the_task_list(app: FastAPI) -> None:
    async with browser_for(app) as browser:
        await sign_up(browser)
        response = await browser.get("/app/tasks?from=0001-01-01&to=9999-12-31")
        assert response.status_code == 200
