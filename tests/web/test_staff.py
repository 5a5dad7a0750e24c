"""Staff pages: tenants, their usage and plan (changed through the form), every task, and the
engine's health; nobody else even learns they exist."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from saassy.context import AppContext
from saassy.email.outbox import queue_email
from saassy.kit.time import utcnow
from saassy.models import Membership, Organization, OutboxEmail, Role, Task, TaskStatus, User
from tests.quotas.conftest import make_staff
from tests.web.support import browser_for, csrf_token, sign_up, submit
from tests.web.test_home import XSS, organization_of, quota_text, use_tasks

STAFF_PAGES = (
    "/app/staff/organizations",
    "/app/staff/tasks",
    "/app/staff/system",
)


@pytest.fixture
async def staff(app: FastAPI, ctx: AppContext) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as client:
        email = await sign_up(client)
        async with ctx.sessionmaker() as session:
            user_id = await session.scalar(select(User.id).where(User.email == email))
        assert user_id is not None
        await make_staff(ctx, user_id)
        yield client


async def add_organization(
    ctx: AppContext, name: str, owner_email: str | None = None, plan: str = "free"
) -> uuid.UUID:
    async with ctx.sessionmaker() as session, session.begin():
        organization = Organization(name=name, plan=plan, plan_overrides={})
        session.add(organization)
        if owner_email:
            user = User(email=owner_email, password_hash=None)
            session.add(user)
            await session.flush()
            session.add(
                Membership(organization_id=organization.id, user_id=user.id, role=Role.owner)
            )
    return organization.id


async def add_task(
    ctx: AppContext,
    organization_id: uuid.UUID,
    task_type: str = "echo",
    status: TaskStatus = TaskStatus.queued,
    run_after_ago: timedelta = timedelta(0),
) -> uuid.UUID:
    now = utcnow()
    async with ctx.sessionmaker() as session, session.begin():
        task = Task(
            organization_id=organization_id,
            type=task_type,
            status=status,
            input={},
            timeout_s=10,
            run_after=now - run_after_ago,
        )
        session.add(task)
    return task.id


async def plan_of(ctx: AppContext, organization_id: uuid.UUID) -> tuple[str, dict[str, object]]:
    async with ctx.sessionmaker() as session:
        organization = await session.get(Organization, organization_id)
        assert organization is not None
        return organization.plan, organization.plan_overrides


async def test_customers_get_404_on_every_staff_page(
    browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    email = await sign_up(browser)
    organization_id = await organization_of(ctx, email)
    for page in (*STAFF_PAGES, f"/app/staff/organizations/{organization_id}"):
        response = await browser.get(page)
        assert response.status_code == 404, page
        assert "Page not found." in response.text  # as for any page that does not exist
    home = (await browser.get("/app")).text
    assert "/app/staff/" not in home  # no link either
    response = await submit(
        browser,
        f"/app/staff/organizations/{organization_id}/plan",
        {"plan": "enterprise"},
        page="/app",
    )
    assert response.status_code == 404
    assert (await plan_of(ctx, organization_id))[0] == "free"


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as client:
        yield client


async def test_signed_out_visitors_are_sent_to_the_login_page(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/app/staff/organizations")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


async def test_organizations_list_owner_plan_usage_and_search(
    staff: httpx.AsyncClient, ctx: AppContext
) -> None:
    acme = await add_organization(ctx, "Acme Rockets", "wile@acme.example", plan="starter")
    await add_organization(ctx, "Globex", "hank@globex.example")
    await use_tasks(ctx, acme, 42)
    html = (await staff.get("/app/staff/organizations")).text
    row = re.search(
        r"<tr class=\"row-link\">\s*<th scope=\"row\"><a href=\"/app/staff/organizations/"
        + str(acme)
        + r"\">Acme Rockets</a>(.*?)</tr>",
        html,
        re.S,
    )
    assert row, html
    cells = re.sub(r"\s+", " ", row.group(1))
    assert "wile@acme.example" in cells
    assert "Starter" in cells
    assert '<td class="num">42</td>' in cells
    by_name = (await staff.get("/app/staff/organizations", params={"q": "rocket"})).text
    assert "Acme Rockets" in by_name
    assert "Globex" not in by_name
    by_email = (await staff.get("/app/staff/organizations", params={"q": "HANK@globex"})).text
    assert "Globex" in by_email
    assert "Acme Rockets" not in by_email
    wildcard = (await staff.get("/app/staff/organizations", params={"q": "%"})).text
    assert "Globex" not in wildcard  # the search's text is literal


async def test_organizations_page_with_a_keyset_cursor(
    staff: httpx.AsyncClient, ctx: AppContext
) -> None:
    names = [f"Tenant {n:02d}" for n in range(55)]
    async with ctx.sessionmaker() as session, session.begin():
        now = utcnow()
        for n, name in enumerate(names):
            session.add(
                Organization(
                    name=name, plan="free", plan_overrides={}, created_at=now - timedelta(minutes=n)
                )
            )
    first = (await staff.get("/app/staff/organizations")).text
    found = re.search(r'href="(/app/staff/organizations\?cursor=[^"]+)" rel="next"', first)
    assert found
    second = (await staff.get(found.group(1).replace("&amp;", "&"))).text
    shown_first = set(re.findall(r">(Tenant \d\d)<", first))
    shown_second = set(re.findall(r">(Tenant \d\d)<", second))
    assert shown_first
    assert shown_second
    assert not shown_first & shown_second
    assert shown_first | shown_second == set(names)
    assert "Tenant 00" in shown_first


async def test_staff_change_a_plan_and_the_customer_sees_the_new_limits(
    app: FastAPI, staff: httpx.AsyncClient, ctx: AppContext
) -> None:
    async with browser_for(app) as customer:
        email = await sign_up(customer)
        organization_id = await organization_of(ctx, email)
        assert "0 / 100 tasks" in quota_text((await customer.get("/app")).text, "tasks")
        detail = f"/app/staff/organizations/{organization_id}"
        page = (await staff.get(detail)).text
        assert email in page  # members
        assert '<option value="starter">' in page
        assert '<option value="free" selected>' in page
        # An empty override field shows the plan's own value.
        assert 'name="overrides.tasks_per_month" type="text" value="" placeholder="100"' in page
        assert 'name="overrides.storage_mb" type="text" value="" placeholder="100"' in page
        response = await submit(staff, f"{detail}/plan", {"plan": "starter"}, page=detail)
        assert response.status_code == 303
        assert response.headers["location"] == detail
        assert "now on the Starter plan" in (await staff.get(detail)).text
        assert await plan_of(ctx, organization_id) == ("starter", {})
        home = (await customer.get("/app")).text
        assert "0 / 1,000 tasks" in quota_text(home, "tasks")
        assert "0 / 3 tasks" in quota_text(home, "concurrent")
        assert "Starter plan" in home
        assert "$19.00" in home


async def test_overrides_through_the_form_are_stored_as_the_api_stores_them(
    app: FastAPI, staff: httpx.AsyncClient, ctx: AppContext
) -> None:
    async with browser_for(app) as customer:
        email = await sign_up(customer)
        organization_id = await organization_of(ctx, email)
        detail = f"/app/staff/organizations/{organization_id}"
        response = await submit(
            staff,
            f"{detail}/plan",
            {
                "plan": "pro",
                "overrides.tasks_per_month": "50000",
                "overrides.storage_mb": "unlimited",
                "overrides.resources.memory_mb": "8192",
                "overrides.resources.cpus": "1.5",
                "overrides.daily_action_caps": "publish = 500\nexport = 7",
                "overrides.api_rate_limit": "5000/minute",
                "overrides.price_usd_month": "99.50",
            },
            page=detail,
        )
        assert response.status_code == 303, response.text
        assert await plan_of(ctx, organization_id) == (
            "pro",
            {
                "tasks_per_month": 50000,
                "storage_mb": None,
                "resources": {"memory_mb": 8192, "cpus": 1.5},
                "daily_action_caps": {"publish": 500, "export": 7},
                "api_rate_limit": "5000/minute",
                "price_usd_month": 99.5,
            },
        )
        page = (await staff.get(detail)).text
        assert 'value="50000"' in page
        assert 'value="unlimited"' in page
        assert "publish = 500\nexport = 7" in page
        home = (await customer.get("/app")).text
        assert "0 / 50,000 tasks" in quota_text(home, "tasks")
        assert "unlimited" in quota_text(home, "storage")
        assert "0 / 7 actions" in quota_text(home, "action:export")
        assert "$99.50" in home


@pytest.mark.parametrize(
    ("fields", "error_field", "message"),
    [
        (
            {"overrides.max_concurrent_tasks": "0"},
            "overrides.max_concurrent_tasks",
            "greater than or equal to 1",
        ),
        ({"overrides.tasks_per_month": "lots"}, "overrides.tasks_per_month", "whole number"),
        ({"overrides.api_rate_limit": "fast"}, "overrides.api_rate_limit", "not a rate limit"),
        (
            {"overrides.daily_action_caps": "Publish Now = 5"},
            "overrides.daily_action_caps",
            "String should match pattern",
        ),
        (
            {"overrides.daily_action_caps": "publish"},
            "overrides.daily_action_caps",
            "name = number",
        ),
        ({"plan": "platinum"}, "plan", "There is no plan"),
    ],
)
async def test_invalid_overrides_are_refused_beside_their_field(
    staff: httpx.AsyncClient,
    ctx: AppContext,
    fields: dict[str, str],
    error_field: str,
    message: str,
) -> None:
    organization_id = await add_organization(ctx, "Initech", "bill@initech.example")
    detail = f"/app/staff/organizations/{organization_id}"
    response = await submit(staff, f"{detail}/plan", {"plan": "starter", **fields}, page=detail)
    assert response.status_code == 422
    error = re.search(
        rf'<p class="error" id="f-{re.escape(error_field)}-error">(.*?)</p>', response.text, re.S
    )
    assert error, response.text
    assert message in error.group(1)
    assert f'aria-describedby="f-{error_field}' in response.text or error_field == "plan"
    for value in fields.values():
        assert value.split("\n")[0] in response.text  # what was typed is kept
    assert await plan_of(ctx, organization_id) == ("free", {})


async def test_the_plan_form_needs_the_csrf_token(
    staff: httpx.AsyncClient, ctx: AppContext
) -> None:
    organization_id = await add_organization(ctx, "Hooli")
    detail = f"/app/staff/organizations/{organization_id}"
    await csrf_token(staff, detail)
    missing = await staff.post(f"{detail}/plan", data={"plan": "pro"})
    wrong = await staff.post(f"{detail}/plan", data={"plan": "pro", "csrf_token": "0" * 64})
    assert missing.status_code == wrong.status_code == 403
    assert await plan_of(ctx, organization_id) == ("free", {})


async def test_an_unknown_organization_is_404(staff: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    assert (await staff.get(f"/app/staff/organizations/{missing}")).status_code == 404
    response = await submit(
        staff, f"/app/staff/organizations/{missing}/plan", {"plan": "pro"}, page="/app"
    )
    assert response.status_code == 404


async def test_all_tasks_filter_by_organization_status_and_type(
    staff: httpx.AsyncClient, ctx: AppContext
) -> None:
    acme = await add_organization(ctx, "Acme")
    globex = await add_organization(ctx, "Globex")
    queued_echo = await add_task(ctx, acme, "echo")
    done_python = await add_task(ctx, acme, "python", TaskStatus.succeeded)
    other = await add_task(ctx, globex, "echo", TaskStatus.failed)
    everything = (await staff.get("/app/staff/tasks")).text
    for task_id in (queued_echo, done_python, other):
        assert str(task_id) in everything
    of_acme = (await staff.get("/app/staff/tasks", params={"organization": str(acme)})).text
    assert str(other) not in of_acme
    assert str(queued_echo) in of_acme
    failed = (await staff.get("/app/staff/tasks", params={"status": "failed"})).text
    assert str(other) in failed
    assert str(queued_echo) not in failed
    python = (await staff.get("/app/staff/tasks", params={"type": "python"})).text
    assert str(done_python) in python
    assert str(queued_echo) not in python
    bad = await staff.get("/app/staff/tasks", params={"organization": "acme"})
    assert bad.status_code == 422
    assert 'id="f-organization-error"' in bad.text


async def test_the_system_page_shows_queue_depth_lag_and_outbox(
    staff: httpx.AsyncClient, ctx: AppContext
) -> None:
    acme = await add_organization(ctx, "Acme")
    globex = await add_organization(ctx, "Globex")
    for _ in range(3):
        await add_task(ctx, acme, "echo", run_after_ago=timedelta(minutes=5))
    await add_task(ctx, globex, "python", run_after_ago=timedelta(seconds=1))
    await add_task(ctx, globex, "python", TaskStatus.running)
    async with ctx.sessionmaker() as session, session.begin():
        await queue_email(
            session, ctx.settings, to="someone@example.com", subject="Hi", body="Body"
        )
    async with ctx.sessionmaker() as session:
        unsent = await session.scalar(
            select(func.count()).select_from(OutboxEmail).where(OutboxEmail.sent_at.is_(None))
        )
    assert unsent
    html = re.sub(r"\s+", " ", (await staff.get("/app/staff/system")).text)
    assert "<dt>Database</dt><dd>" in html
    assert "<dt>Queued</dt><dd>4 tasks (4 due now)</dd>" in html
    assert re.search(r"<dt>Dispatch lag</dt><dd>5 min( \d+ s)?</dd>", html)
    assert f'organization={acme}&amp;status=queued">Acme</a></th><td class="num">3</td>' in html
    assert '<th scope="row">python</th><td class="num">1</td>' in html
    assert "<dt>Running everywhere</dt><dd>1 tasks</dd>" in html
    assert f"<dt>Waiting to send</dt><dd>{unsent}</dd>" in html


@pytest.mark.parametrize("payload", XSS)
async def test_names_and_emails_are_inert_on_staff_pages(
    staff: httpx.AsyncClient, ctx: AppContext, payload: str
) -> None:
    organization_id = await add_organization(ctx, f"Evil {payload}", f"x{payload}@evil.example")
    await add_task(ctx, organization_id, payload[:60])
    for page in (
        *STAFF_PAGES,
        f"/app/staff/organizations/{organization_id}",
        f"/app/staff/tasks?type={payload}",
        f"/app/staff/organizations?q={payload}",
    ):
        response = await staff.get(page)
        assert response.status_code in (200, 422), page
        assert payload not in response.text, page
    listing = (await staff.get("/app/staff/organizations")).text
    assert "Evil &lt;" in listing
    assert "x&lt;" in listing
