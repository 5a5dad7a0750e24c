"""The schedule pages: the list with next run, state and last refusal; creating one with the
API's refusals beside their fields; pausing, resuming, deleting; other tenants' ids are 404."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from saassy.config import Settings
from saassy.context import AppContext
from saassy.models import Schedule
from saassy.schedules.jobs import ScheduleLoop
from saassy.web.pages.schedules import beside_fields
from tests.audit.support import action_counts, entries
from tests.web.support import browser_for, input_attributes, sign_up, submit
from tests.web.team import assert_inert, flash_after

PAGE = "/app/schedules"
NEW = "/app/schedules/new"

CATALOG = """
default_plan = "free"

[plans.free]
name = "Free"
tasks_per_month = 1
api_rate_limit = "1000/minute"

[task_types.echo]
title = "Echo"
command = ["/bin/true"]
input_schema = { type = "object", required = ["message"], \
properties = { message = { type = "string", minLength = 1 } } }
"""


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    path = tmp_path / "saassy.toml"
    path.write_text(CATALOG, encoding="utf-8")
    return settings_factory(config=path)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as client:
        yield client


def form(**fields: str) -> dict[str, str]:
    values = {
        "name": "Morning report",
        "type": "echo",
        "input": '{"message": "hello"}',
        "cadence": "cron",
        "cron": "* * * * *",
        "timezone": "Europe/Paris",
        "catch_up": "once",
    }
    return {**values, **fields}


async def test_the_interval_field_has_its_bounds_as_real_attributes(
    browser: httpx.AsyncClient,
) -> None:
    await sign_up(browser)
    page = await browser.get(NEW)
    interval = input_attributes(page.text, "interval_s")
    assert interval["min"] == "60"
    assert interval["inputmode"] == "numeric"
    assert "&#34;" not in page.text


async def test_a_crafted_catch_up_is_refused_beside_its_field(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    await sign_up(browser)
    refused = await submit(browser, NEW, form(catch_up="bogus"), page=NEW)
    assert refused.status_code == 422
    error = re.search(r'<p class="error" id="f-catch_up-error">([^<]+)</p>', refused.text)
    assert error, refused.text
    assert "once" in error.group(1)
    assert 'aria-describedby="f-catch_up-help f-catch_up-error" aria-invalid="true"' in refused.text


def test_an_error_about_no_field_of_the_form_goes_above_it() -> None:
    placed = beside_fields({"input.url": "Not a URL.", "cadence": "Pick one.", "name": "Empty."})
    assert placed == {"input": "Not a URL.", "form": "Pick one.", "name": "Empty."}


async def test_create_pause_resume_delete_a_schedule(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    await sign_up(browser)
    empty = await browser.get(PAGE)
    assert "No schedules yet." in empty.text
    assert "curl -X POST" in empty.text
    assert 'href="/app/schedules"' in empty.text  # in the sidebar

    created = await submit(browser, NEW, form(), page=NEW)
    assert await flash_after(browser, created) == ("success", "Schedule created.")
    schedule_id = created.headers["location"].rsplit("/", 1)[1]
    detail = await browser.get(f"{PAGE}/{schedule_id}")
    assert "Morning report" in detail.text
    assert "Europe/Paris" in detail.text
    assert detail.text.count("<li><time") == 5  # the next five runs
    assert "No runs yet" in detail.text

    listed = await browser.get(PAGE)
    row = re.search(
        r'<th scope="row"><a href="/app/schedules/[^<]*Morning report.*?</tr>', listed.text, re.S
    )
    assert row, listed.text
    assert "active" in row.group(0)
    assert "<time" in row.group(0)  # its next run
    assert "none" in row.group(0)  # no refusal

    paused = await submit(browser, f"{PAGE}/{schedule_id}/pause", page=PAGE)
    assert await flash_after(browser, paused) == ("success", "Schedule paused.")
    assert "Resume" in (await browser.get(PAGE)).text
    resumed = await submit(
        browser, f"{PAGE}/{schedule_id}/resume?from=detail", page=f"{PAGE}/{schedule_id}"
    )
    assert resumed.headers["location"] == f"{PAGE}/{schedule_id}"

    deleted = await submit(browser, f"{PAGE}/{schedule_id}/delete", page=f"{PAGE}/{schedule_id}")
    assert await flash_after(browser, deleted) == ("success", "Schedule deleted.")
    assert (await browser.get(f"{PAGE}/{schedule_id}")).status_code == 404
    # Each is in the audit log once, as the other audited actions are.
    counts = await action_counts(ctx)
    assert {action: n for action, n in counts.items() if action.startswith("schedule.")} == {
        "schedule.created": 1,
        "schedule.paused": 1,
        "schedule.resumed": 1,
        "schedule.deleted": 1,
    }
    for entry in await entries(ctx):
        if entry.action.startswith("schedule."):
            assert (entry.target_type, str(entry.target_id)) == ("schedule", schedule_id)
            assert entry.actor_user_id is not None
            assert entry.ip is not None


async def test_a_schedule_paused_for_its_member_says_so_and_resumes_as_you(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    await sign_up(browser)
    created = await submit(browser, NEW, form(), page=NEW)
    schedule_id = uuid.UUID(created.headers["location"].rsplit("/", 1)[1])
    async with ctx.sessionmaker() as session, session.begin():
        schedule = (await session.scalars(select(Schedule))).one()
        me = schedule.run_as_user_id
        schedule.run_as_user_id = uuid.uuid4()  # as if made by a member who has left since
    now = schedule.next_run_at + timedelta(seconds=1)
    await ScheduleLoop(ctx.sessionmaker, ctx.settings, clock=lambda: now).fire_due()

    message = "Paused: the member it ran as left the organization; resume it to run it as you."
    assert "Its member left: resume to run it as you." in (await browser.get(PAGE)).text
    assert message in (await browser.get(f"{PAGE}/{schedule_id}")).text
    await submit(browser, f"{PAGE}/{schedule_id}/resume?from=detail", page=f"{PAGE}/{schedule_id}")
    assert message not in (await browser.get(f"{PAGE}/{schedule_id}")).text
    async with ctx.sessionmaker() as session:
        resumed = (await session.scalars(select(Schedule))).one()
    assert (resumed.paused, resumed.run_as_user_id) == (False, me)


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"cron": "every morning"}, "cron", "is not a cron expression"),
        ({"timezone": "Mars/Olympus"}, "timezone", "is not an IANA time zone"),
        ({"input": "{"}, "input", "Not valid JSON"),
        ({"input": '{"message": ""}'}, "input", "input.message"),
        ({"cadence": "interval", "interval_s": "10"}, "interval_s", "outside what a schedule"),
        ({"name": ""}, "name", ""),
    ],
)
async def test_refusals_are_shown_beside_their_field(
    browser: httpx.AsyncClient, fields: dict[str, str], field: str, message: str
) -> None:
    await sign_up(browser)
    refused = await submit(browser, NEW, form(**fields), page=NEW)
    assert refused.status_code == 422
    error = re.search(rf'<p class="error" id="f-{field}-error">([^<]*)</p>', refused.text)
    assert error, refused.text
    assert message in error.group(1)
    # What was typed stays in the form.
    assert 'value="Europe/Paris"' in refused.text or field == "timezone"
    assert "No schedules yet." in (await browser.get(PAGE)).text


async def test_a_refused_run_shows_on_the_list_and_the_page(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    await sign_up(browser)
    created = await submit(browser, NEW, form(), page=NEW)
    schedule_id = uuid.UUID(created.headers["location"].rsplit("/", 1)[1])
    async with ctx.sessionmaker() as session:
        schedule = (await session.scalars(select(Schedule))).one()
    now = schedule.next_run_at + timedelta(seconds=1)
    loop = ScheduleLoop(ctx.sessionmaker, ctx.settings, clock=lambda: now)
    await loop.fire_due()  # the plan's one task of the month
    now += timedelta(minutes=1)
    await loop.fire_due()  # refused

    listed = await browser.get(PAGE)
    assert "<code>quota_exceeded</code>" in listed.text
    assert "refused" in listed.text
    detail = await browser.get(f"{PAGE}/{schedule_id}")
    assert "A run was refused" in detail.text
    assert detail.text.count('class="badge queued"') == 1
    assert detail.text.count('class="badge refused"') == 1


async def test_another_tenants_schedule_is_not_found(
    browser: httpx.AsyncClient, app: FastAPI
) -> None:
    await sign_up(browser)
    created = await submit(browser, NEW, form(name="<script>alert(1)</script>"), page=NEW)
    schedule_id = created.headers["location"].rsplit("/", 1)[1]
    assert_inert((await browser.get(PAGE)).text, "<script>alert(1)</script>")
    async with browser_for(app, ip="203.0.113.77") as other:
        await sign_up(other)
        assert (await other.get(f"{PAGE}/{schedule_id}")).status_code == 404
        for action in ("pause", "resume", "delete"):
            response = await submit(other, f"{PAGE}/{schedule_id}/{action}", page=PAGE)
            assert response.status_code == 404
        assert (await other.get(f"{PAGE}/not-an-id")).status_code == 404
    still = await browser.get(f"{PAGE}/{schedule_id}")
    assert still.status_code == 200
