"""A customer's whole journey in Chromium, against a real server running real sandboxes:
sign up, verify the address, run Python from the form and watch its log arrive, download what it
wrote, re-run it, bulk-cancel queued tasks, manage an API key and a secret, invite a member,
have staff change the plan, log out. Every main page is checked by axe-core and photographed at
1280 and 390 px (tests/browser/screenshots/)."""

from __future__ import annotations

import asyncio
import re
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Locator, Page, expect

from saassy.accounts.service import register_user
from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine, build_task_engine
from saassy.kit.time import utcnow
from saassy.runtime.process import ProcessRuntime
from tests.browser.support import (
    DESKTOP,
    LiveServer,
    assert_accessible,
    links_in,
    mails_to,
    screenshot,
)
from tests.runtime.conftest import require_isolation
from tests.runtime.support import own_work_root

CATALOG = Path(__file__).parent / "journey_catalog.toml"
PASSWORD = "correct horse battery"
SECRET_VALUE = "tok_" + "9f3c" * 6  # 28 characters
# Prints, pauses, writes a file and a result: long enough to watch its log arrive line by line.
WATCHED = textwrap.dedent(
    """\
    import json, os, pathlib, time
    print("starting", flush=True)
    time.sleep(1.5)
    print("halfway there", flush=True)
    out = pathlib.Path(os.environ["SAASSY_OUTPUT"])
    (out / "report.txt").write_text("hello from the sandbox\\n")
    time.sleep(1.5)
    print("done", flush=True)
    (out / "result.json").write_text(json.dumps({"answer": 42}))
    """
)
SLOW = "import time\nprint('holding the only slot', flush=True)\ntime.sleep(90)\n"
QUICK = "print('quick')\n"
FOUR_SECONDS = "import time\nprint('slow', flush=True)\ntime.sleep(4)\n"

pytestmark = pytest.mark.timeout(420)


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], live_port: int) -> Settings:
    return settings_factory(base_url=f"http://127.0.0.1:{live_port}", config=CATALOG)


@pytest.fixture
async def engine(app: FastAPI, tmp_path: Path) -> AsyncIterator[TaskEngine]:
    """The engine on the real sandbox runtime, in the server's process as in `saassy dev`."""
    ctx: AppContext = app.state.ctx
    runtime = ProcessRuntime(work_dir=own_work_root(tmp_path))
    require_isolation(runtime)
    engine = build_task_engine(
        ctx.settings, ctx.sessionmaker, runtime, lease=timedelta(seconds=5), poll_s=0.05
    )
    ctx.task_engine = engine
    await engine.start()
    yield engine
    ctx.task_engine = None
    await engine.stop(grace_s=0.5)


async def look(page: Page, name: str) -> None:
    """Check the page as it is now with axe-core and photograph it at both widths."""
    await assert_accessible(page)
    await screenshot(page, name)


async def new_context(browser: Browser) -> BrowserContext:
    context = await browser.new_context(viewport=DESKTOP, accept_downloads=True)
    context.set_default_timeout(15_000)
    await context.route(
        re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]).*"),
        lambda route: route.abort("blockedbyclient"),
    )
    return context


async def verify_address(page: Page, server: LiveServer, email: str) -> None:
    [link] = [
        link
        for mail in await mails_to(server, email)
        for link in links_in(mail.body)
        if "/verify-email" in link
    ]
    await page.goto(link)
    await page.get_by_role("button", name="Verify my address").click()


async def run_python(page: Page, server: LiveServer, code: str) -> str:
    """Submit `code` from the New task form; answers the new task's id (its page is open)."""
    await page.goto(f"{server.url}/app/tasks/new?type=python")
    await page.get_by_label("Code").fill(code)
    await page.get_by_role("button", name="Run task").click()
    await expect(page).to_have_url(re.compile(r"/app/tasks/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def status_badge(page: Page) -> Locator:
    return page.locator(".page-header .badge").first


def result_of(page: Page) -> Locator:
    return page.get_by_role("region", name="Result").locator("pre")


async def test_a_customer_journey(
    page: Page, live_server: LiveServer, engine: TaskEngine, browser: Browser
) -> None:
    url = live_server.url
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"

    # The landing page says what is sold and leads to signing up.
    await page.goto(url + "/")
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await look(page, "landing")
    await page.goto(url + "/pricing")
    await expect(page.get_by_role("heading", name="Pro")).to_be_visible()
    await look(page, "pricing")
    await page.goto(url + "/docs")
    await look(page, "docs")
    await page.goto(url + "/")
    await page.get_by_role("link", name="Sign up").first.click()
    await look(page, "signup")

    # Sign up; the dashboard asks for the address to be verified until it is.
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page).to_have_url(url + "/app")
    await expect(page.locator(".verify-banner")).to_be_visible()
    await look(page, "home-new-account")
    await verify_address(page, live_server, email)
    await page.goto(url + "/app")
    await expect(page.locator(".verify-banner")).to_have_count(0)

    # Python from the form; the log arrives line by line while the page stays loaded.
    await page.goto(url + "/app/tasks/new?type=python")
    await look(page, "task-new")
    task_id = await run_python(page, live_server, WATCHED)
    await page.evaluate("window.__notReloaded = true")
    lines = page.locator("#log-lines li")
    await expect(lines.filter(has_text="halfway there")).to_be_visible()
    assert await lines.filter(has_text="done").count() == 0  # seen before the task ended
    await expect(status_badge(page)).to_contain_text("succeeded", timeout=60_000)
    await expect(lines.filter(has_text="done")).to_be_visible()
    assert await page.evaluate("window.__notReloaded === true")  # live, not a reload
    await page.reload()
    await expect(result_of(page)).to_contain_text('"answer": 42')
    await look(page, "task-detail")

    # The file it wrote downloads as written.
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download report.txt").click()
    download = await download_info.value
    assert download.suggested_filename == "report.txt"
    saved = await download.path()
    assert await asyncio.to_thread(Path(saved).read_text) == "hello from the sandbox\n"

    # Re-run: a new task with the same input, which succeeds too.
    await page.get_by_role("button", name="Re-run").click()
    await expect(page).to_have_url(re.compile(r"/app/tasks/[0-9a-f-]{36}$"))
    rerun_id = page.url.rsplit("/", 1)[1]
    assert rerun_id != task_id
    await expect(status_badge(page)).to_contain_text("succeeded", timeout=60_000)

    # The free plan runs one task at a time: three more wait, and are canceled together.
    slow_id = await run_python(page, live_server, SLOW)
    await expect(status_badge(page)).to_contain_text("running", timeout=30_000)
    queued = [await run_python(page, live_server, QUICK) for _ in range(3)]
    await page.goto(url + "/app/tasks?status=queued")
    await look(page, "tasks-list")
    for queued_id in queued:
        await page.get_by_label(f"Select task {queued_id[:8]}").check()
    await page.get_by_label("With the selected tasks").select_option("cancel")
    await page.get_by_role("button", name="Apply").click()
    await page.locator("dialog[open]").get_by_role("button", name="Apply").click()
    await expect(page.get_by_role("status")).to_contain_text("3 canceled")
    for queued_id in queued:
        await page.goto(f"{url}/app/tasks/{queued_id}")
        await expect(status_badge(page)).to_contain_text("canceled")
    await page.goto(f"{url}/app/tasks/{slow_id}")
    await page.get_by_role("button", name="Cancel", exact=True).click()
    await page.locator("dialog[open]").get_by_role("button", name="Cancel task").click()
    await expect(status_badge(page)).to_contain_text("canceled", timeout=30_000)

    # An API key: shown once, works, and stops working when revoked.
    await page.goto(url + "/app/api-keys")
    await look(page, "api-keys")
    await page.get_by_label("Name").fill("ci")
    await page.get_by_role("button", name="Create key").click()
    key = await page.locator("#new-api-key").input_value()
    assert key.startswith("sk_")
    await screenshot(page, "api-key-created")
    async with httpx.AsyncClient(base_url=url) as api:
        headers = {"Authorization": f"Bearer {key}"}
        assert (await api.get("/api/v1/tasks", headers=headers)).status_code == 200
        await page.goto(url + "/app/api-keys")
        assert key not in await page.content()
        await page.get_by_role("button", name="Revoke ci").click()
        await page.locator("dialog[open]").get_by_role("button", name=re.compile("Revoke")).click()
        await expect(page.get_by_role("status")).to_be_visible()
        assert (await api.get("/api/v1/tasks", headers=headers)).status_code == 401

    # A secret, stored once and used by a task without ever being shown.
    await page.goto(url + "/app/secrets/new")
    await look(page, "secret-new")
    await page.get_by_label("Name").fill("API_TOKEN")
    await page.get_by_label("Value").fill(SECRET_VALUE)
    await page.get_by_role("button", name="Store secret").click()
    await expect(page.locator("main table")).to_contain_text("API_TOKEN")
    await look(page, "secrets")
    await page.goto(url + "/app/tasks/new?type=signed")
    await page.get_by_role("button", name="Run task").click()
    await expect(status_badge(page)).to_contain_text("succeeded", timeout=60_000)
    await page.reload()
    await expect(result_of(page)).to_contain_text(f'"length": {len(SECRET_VALUE)}')
    await expect(page.locator("#log-lines")).to_contain_text("token of 28 characters")
    assert SECRET_VALUE not in await page.content()

    # An invited member signs up from the e-mailed link and joins.
    member_email = f"grace-{uuid.uuid4().hex[:8]}@example.com"
    await page.goto(url + "/app/organization/members")
    await page.get_by_label("E-mail").fill(member_email)
    await page.get_by_role("button", name="Send invitation").click()
    await expect(page.get_by_role("status")).to_be_visible()
    await look(page, "members")
    [invitation] = [
        link
        for mail in await mails_to(live_server, member_email)
        for link in links_in(mail.body)
        if "/invitations/accept" in link
    ]
    member_context = await new_context(browser)
    member = await member_context.new_page()
    await member.goto(invitation)
    await look(member, "invitation")
    await member.locator("#main").get_by_role("link", name="Sign up").click()
    await member.get_by_label("E-mail").fill(member_email)
    await member.get_by_label("Password").fill(PASSWORD)
    await member.get_by_role("button", name="Sign up").click()
    await member.get_by_role("button", name="Accept the invitation").click()
    await expect(member).to_have_url(re.compile(r"/app"))
    await expect(member.get_by_role("status")).to_be_visible()
    await member_context.close()
    await page.reload()
    await expect(page.get_by_role("cell", name=member_email)).to_be_visible()

    # Staff move the organization to Pro; its home shows the new limits.
    await page.goto(url + "/app")
    await expect(page.locator("main")).to_contain_text("100")  # the free plan's tasks/month
    await look(page, "home")
    staff_email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
    async with live_server.ctx.sessionmaker() as session:
        staff_user, _ = await register_user(
            session, live_server.ctx.settings, email=staff_email, password=PASSWORD, is_staff=True
        )
        staff_user.email_verified_at = utcnow()
        await session.commit()
    staff_context = await new_context(browser)
    staff = await staff_context.new_page()
    await staff.goto(url + "/login")
    await staff.get_by_label("E-mail").fill(staff_email)
    await staff.get_by_label("Password").fill(PASSWORD)
    await staff.get_by_role("button", name="Log in").click()
    await staff.goto(f"{url}/app/staff/organizations?q={email}")
    await look(staff, "staff-organizations")
    await staff.get_by_role("link", name=re.compile(re.escape(email.split("@")[0]))).first.click()
    await look(staff, "staff-organization")
    await staff.get_by_label("Plan", exact=True).select_option("pro")
    await staff.get_by_role("button", name="Save plan").click()
    await expect(staff.get_by_role("status")).to_be_visible()
    await staff.goto(url + "/app/staff/tasks")
    await look(staff, "staff-tasks")
    await staff.goto(url + "/app/staff/system")
    await look(staff, "staff-system")
    await staff_context.close()
    await page.goto(url + "/app")
    await expect(page.locator("main")).to_contain_text("Pro")
    await expect(page.locator("main")).to_contain_text("5,000")

    # The rest of the app, looked at once.
    for path, name in (
        ("/app/no-such-page", "not-found"),
        ("/app/organization", "organization"),
        ("/app/organization/new", "organization-new"),
        ("/app/secrets/API_TOKEN", "secret"),
        ("/app/tasks", "tasks-all"),
        ("/app/account", "account"),
    ):
        await page.goto(url + path)
        await look(page, name)

    # Logging out ends the session.
    await page.get_by_role("complementary").get_by_role("button", name="Log out").click()
    await expect(page).to_have_url(re.compile(r"/login"))
    await look(page, "login")
    await page.goto(url + "/app")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    # The pages e-mailed links and forgotten passwords lead to (a token is used only by POST).
    for path, name in (
        ("/forgot-password", "forgot-password"),
        ("/login/magic", "magic-link-request"),
        ("/login/magic?token=unused", "magic-link"),
        ("/reset-password?token=unused", "reset-password"),
        ("/verify-email?token=unused", "verify-email"),
    ):
        await page.goto(url + path)
        await look(page, name)


async def test_the_dashboard_works_with_javascript_off(
    live_server: LiveServer, engine: TaskEngine, browser: Browser
) -> None:
    """Forms post, filters apply with their button, and a running task's page refreshes itself
    (a meta refresh) instead of streaming."""
    url = live_server.url
    context = await browser.new_context(viewport=DESKTOP, java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await page.goto(url + "/signup")
        await page.get_by_label("E-mail").fill(f"nojs-{uuid.uuid4().hex[:8]}@example.com")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign up").click()
        await expect(page).to_have_url(url + "/app")
        await page.goto(url + "/app/tasks/new?type=python")
        await page.get_by_label("Code").fill(
            "import time\nprint('slow', flush=True)\ntime.sleep(4)\n"
        )
        await page.get_by_role("button", name="Run task").click()
        await expect(page).to_have_url(re.compile(r"/app/tasks/[0-9a-f-]{36}$"))
        # While it runs, the page says how to see more and reloads itself.
        assert await page.locator("noscript meta[http-equiv=refresh]").count() == 1
        await expect(page.get_by_role("link", name="Refresh")).to_be_visible()
        await expect(status_badge(page)).to_contain_text("succeeded", timeout=60_000)
        await expect(page.locator("#log-lines")).to_contain_text("slow")
        assert await page.locator("noscript meta[http-equiv=refresh]").count() == 0
        # The list's filters apply with their button.
        await page.goto(url + "/app/tasks")
        await page.get_by_label("Status").select_option("succeeded")
        await page.get_by_role("button", name="Filter").click()
        await expect(page).to_have_url(re.compile(r"status=succeeded"))
        await expect(page.locator("table")).to_contain_text("python")
    finally:
        await context.close()
