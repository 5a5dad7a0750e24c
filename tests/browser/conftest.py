"""Browser tests: Debian's chromium driven by Playwright (async, on the tests' session loop),
against a real server on loopback, with every request off this machine refused and counted."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from playwright.async_api import (
    Browser,
    Page,
    Route,
    WebSocketRoute,
    async_playwright,
    expect,
)

from saassy.config import Settings
from tests.browser.support import DESKTOP, LiveServer
from tests.processes import free_port, serving
from tests.services import IN_CI

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
# Every Playwright call and `expect` fails after this instead of hanging the test until
# pytest-timeout; generous, since a loaded 2-core CI machine draws a big page in seconds.
CALL_TIMEOUT_MS = 15_000
expect.set_options(timeout=CALL_TIMEOUT_MS)


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname in LOCAL_HOSTS


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless chromium for the run: Debian's, never a downloaded build."""
    executable = shutil.which("chromium")
    if executable is None:
        message = "chromium is not installed: apt-get install chromium"
        if IN_CI:
            pytest.fail(f"{message}; CI must run the browser tests")
        pytest.skip(message)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@pytest.fixture
def blocked_requests() -> list[str]:
    """URLs the page tried to load from off this machine (each was refused)."""
    return []


@pytest.fixture
async def page(browser: Browser, blocked_requests: list[str]) -> AsyncIterator[Page]:
    """A fresh page (own cookies and storage) that may load from loopback only; a test whose
    page tried to load anything else fails, even when the page looked fine without it."""
    context = await browser.new_context(viewport=DESKTOP, service_workers="block")
    context.set_default_timeout(CALL_TIMEOUT_MS)

    async def guard(route: Route) -> None:
        if is_local(route.request.url):
            await route.continue_()
            return
        blocked_requests.append(route.request.url)
        await route.abort("blockedbyclient")

    async def guard_socket(socket: WebSocketRoute) -> None:
        if is_local(socket.url):
            socket.connect_to_server()
            return
        blocked_requests.append(socket.url)
        await socket.close()

    await context.route("**/*", guard)
    await context.route_web_socket(lambda _url: True, guard_socket)
    yield await context.new_page()
    await context.close()
    if blocked_requests:
        pytest.fail(
            "the page tried to load from off this machine:\n"
            + "\n".join(f"  {url}" for url in blocked_requests)
        )


@pytest.fixture
def live_port() -> int:
    """The port `live_server` will listen on, chosen before the app's settings are made."""
    return free_port()


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], live_port: int) -> Settings:
    """The tests' settings, with e-mailed links pointing at the live server."""
    return settings_factory(base_url=f"http://127.0.0.1:{live_port}")


@pytest.fixture
async def live_server(app: FastAPI, live_port: int) -> AsyncIterator[LiveServer]:
    """The tests' `app` (so `ctx`, `client` and `signup` act on the same one) behind a real
    uvicorn on loopback. No e-mail relay runs, so what was sent waits in the outbox
    (`mails_to`); no engine either, unless the test starts one on `ctx`."""
    async with serving(app, live_port) as url:
        yield LiveServer(url, app.state.ctx)
