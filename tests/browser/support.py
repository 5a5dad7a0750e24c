"""What browser tests share: the live server, screenshots, axe-core, and the outbox."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, ViewportSize

from saassy.context import AppContext
from tests.email.mail import Mail, outbox

SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
# axe-core's impacts are minor, moderate, serious and critical; the last two fail a test.
FAILING_IMPACTS = ("serious", "critical")
LINK = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class LiveServer:
    url: str
    ctx: AppContext


NEXT_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


async def screenshot(page: Page, name: str) -> list[Path]:
    """Full-page `<name>-1280.png` and `<name>-390.png` in tests/browser/screenshots/ (not
    kept in git), to look at what a person would see; the viewport is restored after."""
    SCREENSHOTS.mkdir(exist_ok=True)
    before = page.viewport_size or DESKTOP
    paths = []
    for viewport in (DESKTOP, PHONE):
        await page.set_viewport_size(viewport)
        # A full-page capture right after a resize can show a frame painted in between: sticky
        # cells laid out for the new width with the text of their neighbours missing. From the
        # top, so the sticky sidebar is drawn where a reader of the whole page finds it.
        await page.evaluate("window.scrollTo(0, 0)")
        await page.evaluate(NEXT_FRAMES)
        path = SCREENSHOTS / f"{name}-{viewport['width']}.png"
        await page.screenshot(path=path, full_page=True)
        paths.append(path)
    await page.set_viewport_size(before)
    return paths


def _describe(violation: dict[str, Any]) -> str:
    targets = [", ".join(node["target"]) for node in violation["nodes"]]
    shown = "; ".join(targets[:5]) + (f" and {len(targets) - 5} more" if len(targets) > 5 else "")
    return f"- {violation['id']} ({violation['impact']}): {violation['help']}\n    at {shown}"


async def assert_accessible(page: Page, *, exclude: list[str] | None = None) -> None:
    """Run axe-core (from its wheel, never a CDN) on the page as it is now; fail on serious
    or critical violations, listed one per line with where they are. `exclude`: CSS
    selectors of parts that are not ours to fix."""
    context: dict[str, Any] | None = {"exclude": [[s] for s in exclude]} if exclude else None
    results = await Axe().run(page, context=context)
    violations = [v for v in results.response["violations"] if v["impact"] in FAILING_IMPACTS]
    if violations:
        pytest.fail(
            f"axe-core found {len(violations)} serious or critical accessibility problem(s) "
            f"on {page.url}:\n" + "\n".join(_describe(v) for v in violations),
            pytrace=False,
        )


async def mails_to(server: LiveServer, address: str) -> list[Mail]:
    """The e-mails queued for `address`, oldest first, bodies opened (the outbox's sealer)."""
    return await outbox(server.ctx, address.lower())


def links_in(body: str) -> list[str]:
    """Every http(s) link in an e-mail body, in order."""
    return LINK.findall(body)
