"""The dashboard's home: usage bars and banners from the real quota paths, the usage chart,
the cost, recent tasks, the empty state, and nothing of another tenant."""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from saassy.context import AppContext
from saassy.kit.time import next_month_start, utcnow
from saassy.models import Membership, Organization, Task, TaskStatus, UsageRecord, User
from saassy.plans.service import effective_plan
from saassy.quotas.service import reserve
from saassy.quotas.storage import take_storage
from saassy.web.pages.usage_view import cost_so_far
from tests.web.support import browser_for, sign_up

SVG = "{http://www.w3.org/2000/svg}"
XSS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as client:
        yield client


async def organization_of(ctx: AppContext, email: str) -> uuid.UUID:
    """The personal organization the sign-up made for `email`."""
    async with ctx.sessionmaker() as session:
        organization_id = await session.scalar(
            select(Membership.organization_id)
            .join(User, User.id == Membership.user_id)
            .where(User.email == email)
        )
    assert organization_id is not None
    return organization_id


async def use_tasks(ctx: AppContext, organization_id: uuid.UUID, amount: int) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        await reserve(session, ctx.settings.catalog, organization_id, "tasks", amount)


async def add_task(
    ctx: AppContext, organization_id: uuid.UUID, task_type: str = "echo", cpu: float = 0.0
) -> uuid.UUID:
    now = utcnow()
    async with ctx.sessionmaker() as session, session.begin():
        task = Task(
            organization_id=organization_id,
            type=task_type,
            status=TaskStatus.succeeded,
            input={},
            timeout_s=10,
            run_after=now,
        )
        session.add(task)
        await session.flush()
        if cpu:
            session.add(
                UsageRecord(
                    organization_id=organization_id,
                    task_id=task.id,
                    task_type=task_type,
                    attempt_number=1,
                    metric="cpu_seconds",
                    quantity=cpu,
                    recorded_at=now,
                )
            )
    return task.id


def quota_text(html: str, key: str) -> str:
    found = re.search(
        rf'data-quota="{re.escape(key)}">(.*?)</div>\s*(?=<div class="usage-item"|</div>)',
        html,
        re.S,
    )
    assert found, f"no usage bar {key}"
    return re.sub(r"\s+", " ", found.group(1))


async def test_a_new_account_sees_its_plan_and_the_empty_state(
    browser: httpx.AsyncClient,
) -> None:
    await sign_up(browser)
    page = await browser.get("/app")
    assert page.status_code == 200
    html = page.text
    assert "Run your first task" in html
    assert 'href="/app/tasks/new"' in html
    assert "/api/v1/tasks" in html  # the curl line
    assert "0 / 100 tasks (0%)" in quota_text(html, "tasks")
    reset = next_month_start(utcnow()).strftime("%b %-d, %Y")
    assert f"Resets {reset}" in quota_text(html, "tasks")
    assert "0.00 / 100.00 MB" in quota_text(html, "storage")
    assert "0 / 1 tasks" in quota_text(html, "concurrent")
    assert "0 / 5 actions" in quota_text(html, "action:publish")
    assert "data-quota-alert" not in html


async def test_at_80_percent_a_banner_warns_and_links_to_pricing(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    email = await sign_up(browser)
    await use_tasks(ctx, await organization_of(ctx, email), 80)
    html = (await browser.get("/app")).text
    assert "80 / 100 tasks (80%)" in quota_text(html, "tasks")
    assert 'class="usage-bar near"' in html
    banner = re.search(
        r'<div class="banner warning"[^>]*data-quota-alert="tasks">(.*?)</div>', html, re.S
    )
    assert banner, html
    text = re.sub(r"\s+", " ", banner.group(1))
    assert "80% used" in text
    assert next_month_start(utcnow()).strftime("%B %-d, %Y") in text
    assert 'href="/pricing"' in text


async def test_at_79_percent_there_is_no_banner(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    email = await sign_up(browser)
    await use_tasks(ctx, await organization_of(ctx, email), 79)
    html = (await browser.get("/app")).text
    assert "79 / 100 tasks" in quota_text(html, "tasks")
    assert "data-quota-alert" not in html


async def test_an_exhausted_quota_says_so_and_when_it_resets(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    email = await sign_up(browser)
    organization_id = await organization_of(ctx, email)
    await use_tasks(ctx, organization_id, 100)
    async with ctx.sessionmaker() as session, session.begin():
        await reserve(session, ctx.settings.catalog, organization_id, "action:publish", 5)
        organization = await session.get(Organization, organization_id)
        assert organization is not None
        # 90 of the free plan's 100 MB, through the storage quota's own path.
        await take_storage(
            session, effective_plan(ctx.settings.catalog, organization), organization_id, 90 * 1024
        )
    html = (await browser.get("/app")).text
    assert "100 / 100 tasks (100%)" in quota_text(html, "tasks")
    assert "Limit reached." in quota_text(html, "tasks")
    tasks_banner = re.search(
        r'<div class="banner error"[^>]*data-quota-alert="tasks">(.*?)</div>', html, re.S
    )
    assert tasks_banner
    assert "New tasks are refused until it resets" in tasks_banner.group(1)
    assert 'data-quota-alert="action:publish"' in html
    storage_banner = re.search(
        r'<div class="banner warning"[^>]*data-quota-alert="storage">(.*?)</div>', html, re.S
    )
    assert storage_banner
    assert "90% used" in storage_banner.group(1)


async def test_the_chart_is_well_formed_svg_with_a_bar_per_day(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    email = await sign_up(browser)
    organization_id = await organization_of(ctx, email)
    for cpu in (1.5, 2.25):
        await add_task(ctx, organization_id, cpu=cpu)
    html = (await browser.get("/app")).text
    svgs = re.findall(r"<svg class=\"chart\".*?</svg>", html, re.S)
    assert len(svgs) == 2
    days_so_far = utcnow().day
    for svg, title in zip(svgs, ("Tasks submitted per day", "CPU-seconds per day"), strict=True):
        root = ET.fromstring(svg)  # noqa: S314 - our own output
        assert root.get("role") == "img"
        svg_title = root.find(f"{SVG}title")
        assert svg_title is not None
        assert title in (svg_title.text or "")
        assert root.find(f"{SVG}desc") is not None
        assert len(root.findall(f"{SVG}rect")) == days_so_far
        labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "axis-label"]
        assert labels[0] == "Day (UTC)"
    today = utcnow().strftime("%b %-d")
    cells = r'<td class="num">(\d+)</td><td class="num">([\d.]+)</td>'
    row = re.search(rf'<th scope="row"><time[^>]*>{today}</time></th>{cells}', html)
    assert row
    assert row.groups() == ("2", "3.750")
    assert "3.8 CPU-seconds" in svgs[1]


async def test_recent_tasks_link_to_their_pages(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    email = await sign_up(browser)
    task_id = await add_task(ctx, await organization_of(ctx, email), task_type="python")
    html = (await browser.get("/app")).text
    assert f'href="/app/tasks/{task_id}"' in html
    assert "Run your first task" not in html
    assert 'class="badge succeeded"' in html


async def test_cost_is_the_flat_price_and_says_what_is_included(ctx: AppContext) -> None:
    catalog = ctx.settings.catalog
    starter = cost_so_far(catalog.plans["starter"])
    assert [(label, str(amount)) for label, amount in starter.lines] == [
        ("Flat monthly price", "19.00")
    ]
    assert str(starter.total) == "19.00"
    assert "1,000 tasks a month" in starter.included
    assert "20 publish actions a day" in starter.included
    enterprise = cost_so_far(catalog.plans["enterprise"])
    assert enterprise.total is None
    assert enterprise.lines == []
    assert "Unlimited tasks a month" in enterprise.included
    assert "Unlimited storage" in enterprise.included


async def test_the_home_page_shows_the_plan_price(browser: httpx.AsyncClient) -> None:
    await sign_up(browser)
    html = (await browser.get("/app")).text
    assert "Cost so far this period" in html
    assert "$0.00" in html
    assert "100 tasks a month" in html


async def test_other_tenants_usage_and_tasks_never_show(app: FastAPI, ctx: AppContext) -> None:
    async with browser_for(app) as alice, browser_for(app) as bob:
        alice_email = await sign_up(alice)
        await sign_up(bob)
        alice_org = await organization_of(ctx, alice_email)
        await use_tasks(ctx, alice_org, 90)
        task_id = await add_task(ctx, alice_org, cpu=7.0)
        html = (await bob.get("/app")).text
        assert str(task_id) not in html
        assert "0 / 100 tasks" in quota_text(html, "tasks")
        assert "data-quota-alert" not in html
        assert "7.000" not in html
        assert alice_email not in html


@pytest.mark.parametrize("payload", XSS)
async def test_organization_names_and_task_types_are_inert(
    browser: httpx.AsyncClient, ctx: AppContext, payload: str
) -> None:
    email = await sign_up(browser)
    organization_id = await organization_of(ctx, email)
    async with ctx.sessionmaker() as session, session.begin():
        organization = await session.get(Organization, organization_id)
        assert organization is not None
        organization.name = f"Acme {payload}"
    await add_task(ctx, organization_id, task_type=payload[:60])
    html = (await browser.get("/app")).text
    assert payload not in html
    assert "Acme &lt;" in html
    assert "alert(1)" in html  # shown, escaped
