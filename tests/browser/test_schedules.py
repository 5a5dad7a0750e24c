"""The Schedules pages in Chromium: empty, the form, a schedule with a queued and a refused run;
each checked by axe-core and photographed at 1280 and 390 px, and never wider than a phone."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from saassy.config import Settings
from saassy.models import Schedule
from saassy.schedules.jobs import ScheduleLoop
from tests.browser.support import PHONE, LiveServer, assert_accessible, screenshot

CATALOG = """
default_plan = "free"

[plans.free]
name = "Free"
tasks_per_month = 1
api_rate_limit = "1000/minute"

[task_types.report]
title = "Report"
command = ["/bin/true"]
input_schema = { type = "object", required = ["recipients"], \
properties = { recipients = { type = "array", items = { type = "string" } } } }
"""

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], live_port: int, tmp_path: Path) -> Settings:
    path = tmp_path / "saassy.toml"
    path.write_text(CATALOG, encoding="utf-8")
    return settings_factory(base_url=f"http://127.0.0.1:{live_port}", config=path)


async def look(page: Page, name: str) -> None:
    await assert_accessible(page)
    await screenshot(page, name)
    await page.set_viewport_size(PHONE)
    # Tables scroll inside their own box: the page itself is never wider than the phone.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width} px wide at {PHONE['width']} px"
    await assert_accessible(page)
    await page.set_viewport_size({"width": 1280, "height": 800})


async def test_the_schedules_pages(page: Page, live_server: LiveServer) -> None:
    url = live_server.url
    await page.goto(url + "/signup")
    await page.get_by_label("E-mail").fill("planner@example.com")
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign up").click()
    await expect(page).to_have_url(re.compile(r"/app$"))

    await page.get_by_role("complementary").get_by_role("link", name="Schedules").click()
    await expect(page.locator("main")).to_contain_text("No schedules yet.")
    await look(page, "schedules-empty")

    await page.get_by_role("link", name="New schedule").first.click()
    await page.get_by_label("Name").fill("Weekday report")
    await page.get_by_label("Input (JSON)").fill('{"recipients": "not a list"}')
    await page.get_by_label("Cron expression", exact=True).fill("0 9 * * mon-fri")
    await page.get_by_label("Time zone").fill("Europe/Paris")
    await page.get_by_role("button", name="Create schedule").click()
    await expect(page.locator("#f-input-error")).to_contain_text("input.recipients")
    await look(page, "schedule-new-refused")
    await page.get_by_label("Input (JSON)").fill('{"recipients": ["ops@example.com"]}')
    await page.get_by_role("button", name="Create schedule").click()
    await expect(page.get_by_role("status")).to_contain_text("Schedule created.")

    # Two due times on a simulated clock: the plan's one task of the month, then a refusal.
    ctx = live_server.ctx
    async with ctx.sessionmaker() as session:
        schedule = (await session.scalars(select(Schedule))).one()
    now = schedule.next_run_at + timedelta(seconds=1)
    loop = ScheduleLoop(ctx.sessionmaker, ctx.settings, clock=lambda: now)
    await loop.fire_due()
    async with ctx.sessionmaker() as session:
        schedule = (await session.scalars(select(Schedule))).one()
    now = schedule.next_run_at + timedelta(seconds=1)
    await loop.fire_due()

    await page.reload()
    await expect(page.locator("main")).to_contain_text("A run was refused")
    await expect(page.locator("main table")).to_contain_text("quota_exceeded")
    await look(page, "schedule")
    await page.goto(url + "/app/schedules")
    await expect(page.locator("main table")).to_contain_text("Weekday report")
    await look(page, "schedules")

    await page.get_by_role("button", name="Pause Weekday report").click()
    await expect(page.get_by_role("status")).to_contain_text("Schedule paused.")
    await expect(page.locator("main table")).to_contain_text("paused")
    await look(page, "schedules-paused")

    # A scheduler pauses it once the member it runs as may no longer submit tasks, and says so.
    await page.get_by_role("button", name="Resume Weekday report").click()
    await expect(page.get_by_role("status")).to_contain_text("Schedule resumed.")
    async with ctx.sessionmaker() as session, session.begin():
        schedule = (await session.scalars(select(Schedule))).one()
        schedule.run_as_user_id = uuid.uuid4()  # as if made by a member who left since
    now = schedule.next_run_at + timedelta(seconds=1)
    await loop.fire_due()
    left = "Paused: the member it ran as left the organization; resume it to run it as you."
    await page.reload()
    await expect(page.locator("main table")).to_contain_text("Its member left: resume to run")
    await look(page, "schedules-paused-for-member")
    await page.get_by_role("link", name="Weekday report").click()
    await expect(page.get_by_role("note").first).to_contain_text(left)
    await look(page, "schedule-paused-for-member")
