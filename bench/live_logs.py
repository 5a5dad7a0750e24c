"""How soon a line printed in a sandbox reaches a client following the task's logs.

A task prints its clock (`time.time()`, the host's: the sandbox has no time namespace) every
20 ms, 150 times (enough for a p99 in each run); the client follows
`GET /api/v1/tasks/{id}/logs` as server-sent events and takes, for each line, the time it
arrived minus the time in it. The floor is the same program as a plain subprocess read with
`readline()`. The budget (docs/architecture.md) is the p99 at most 20 ms
above the floor's.

The dashboard's task page is measured the same way in Debian's chromium: a customer signs up,
runs the ticker from the New task form, and the page records, for each line its script appends,
the browser's clock minus the time in it (one clock: browser and sandbox share the host's). Lines
already in the page as it loads are not counted: they were replayed, not live. Reported against
the API's own stream in the same run.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import uuid

from bench.client import Auditor, BenchError, Tenant, http_client
from bench.engine_runs import percentile
from bench.report import Row
from bench.server import ServerProcess

PYTHON = "/usr/bin/python3"
TICKS = 150
TICKER = (
    "import time\n"
    "time.sleep(0.5)\n"  # the client is following by then
    f"for _ in range({TICKS}):\n"
    "    print(f'{time.time():.6f}', flush=True)\n"
    "    time.sleep(0.02)\n"
)
TICKER_TYPE = f"""
[task_types.ticker]
title = "Prints its clock every 20 ms"
command = {json.dumps([PYTHON, "-c", TICKER])}
default_timeout_s = 60
max_timeout_s = 60
retries = 0
resources = {{ memory_mb = 64, cpus = 0.5, pids = 16, disk_mb = 8 }}
"""

ROWS = [
    Row("live_log_floor_p99_ms", "Printed -> plain readline, p99", "ms"),
    Row("live_log_p50_ms", "Printed -> SSE client, p50", "ms"),
    Row("live_log_p99_ms", "Printed -> SSE client, p99", "ms"),
    Row("live_log_added_p99_ms", "SSE p99 above readline p99", "ms", at_most=20.0),
    Row("live_log_added_p99_ms_spread", "... spread across runs", "ms"),
    Row("live_log_browser_p50_ms", "Printed -> task page in chromium, p50", "ms"),
    Row("live_log_browser_p99_ms", "Printed -> task page in chromium, p99", "ms"),
    Row("live_log_browser_vs_sse_p99", "Task page p99 / SSE client p99", "x"),
    Row("live_log_browser_vs_sse_p99_spread", "... spread across runs", "x"),
]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
# Installed before the page's own script: stamps each log line added after the page loaded.
STAMP_LINES = """
window.__delays = [];
document.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("log-lines");
  if (!list) return;
  new MutationObserver((changes) => {
    const now = Date.now() / 1000;
    for (const change of changes) for (const node of change.addedNodes) {
      const tick = parseFloat(node.textContent);
      if (!isNaN(tick)) window.__delays.push(now - tick);
    }
  }).observe(list, {childList: true});
});
"""


def floor_delays() -> list[float]:
    """The ticker as a plain subprocess, read line by line as it prints."""
    process = subprocess.Popen([PYTHON, "-c", TICKER], stdout=subprocess.PIPE)  # noqa: S603
    assert process.stdout is not None
    delays = [time.time() - float(line) for line in process.stdout]
    if process.wait() != 0:
        raise BenchError("the floor's ticker failed")
    return delays


async def followed_delays(server: ServerProcess, auditor: Auditor, tenant: Tenant) -> list[float]:
    """One ticker task followed through the API from its submission to its `end` event."""
    delays: list[float] = []
    async with http_client(server.url) as client:
        response = await client.post(
            "/api/v1/tasks", json={"type": "ticker", "input": {}}, headers=tenant.headers
        )
        if response.status_code != 202:
            raise BenchError(f"submit answered {response.status_code}: {response.text}")
        task_id = uuid.UUID(response.json()["id"])
        headers = {**tenant.headers, "Accept": "text/event-stream"}
        path = f"/api/v1/tasks/{task_id}/logs"
        async with client.stream("GET", path, headers=headers) as stream:
            event = ""
            async for line in stream.aiter_lines():
                arrived = time.time()
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "log":
                    data = json.loads(line.removeprefix("data: "))["data"]
                    delays += [arrived - float(tick) for tick in data.splitlines()]
                elif line.startswith("data: ") and event == "end":
                    break
    await auditor.wait_task(task_id, timeout_s=60)
    if len(delays) != TICKS:
        raise BenchError(f"the follower saw {len(delays)} of {TICKS} lines")
    return delays


async def browser_delays(server: ServerProcess) -> list[float]:
    """One ticker task run from the dashboard's form and watched on its page in chromium."""
    from playwright.async_api import async_playwright  # a test dependency, like the bench's

    executable = shutil.which("chromium")
    if executable is None:
        raise BenchError("chromium is not installed: apt-get install chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            page.set_default_timeout(30_000)
            await page.goto(f"{server.url}/signup")
            await page.get_by_label("E-mail").fill(f"watcher-{uuid.uuid4().hex[:12]}@example.com")
            await page.get_by_label("Password").fill("benchmark passphrase")
            await page.get_by_role("button", name="Sign up").click()
            await page.wait_for_url(f"{server.url}/app")
            await page.goto(f"{server.url}/app/tasks/new?type=ticker")
            await page.add_init_script(STAMP_LINES)
            await page.get_by_role("button", name="Run task").click()
            await page.wait_for_url(re.compile(r"/app/tasks/[0-9a-f-]{36}$"))
            await page.locator(".page-header .badge.succeeded").wait_for(timeout=60_000)
            delays: list[float] = await page.evaluate("window.__delays")
        finally:
            await browser.close()
    if len(delays) < TICKS // 2:
        raise BenchError(f"the task page saw {len(delays)} of {TICKS} lines arrive live")
    return delays


async def live_numbers(server: ServerProcess, auditor: Auditor, tenant: Tenant) -> dict[str, float]:
    floor = await asyncio.to_thread(floor_delays)
    followed = await followed_delays(server, auditor, tenant)
    watched = await browser_delays(server)
    ms = {
        "live_log_floor_p99_ms": percentile(floor, 99) * 1000,
        "live_log_p50_ms": percentile(followed, 50) * 1000,
        "live_log_p99_ms": percentile(followed, 99) * 1000,
        "live_log_browser_p50_ms": percentile(watched, 50) * 1000,
        "live_log_browser_p99_ms": percentile(watched, 99) * 1000,
    }
    ms["live_log_added_p99_ms"] = ms["live_log_p99_ms"] - ms["live_log_floor_p99_ms"]
    ms["live_log_browser_vs_sse_p99"] = ms["live_log_browser_p99_ms"] / ms["live_log_p99_ms"]
    return ms
