"""/api/docs works offline: Swagger UI comes from the server itself, nothing from a CDN."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, expect

from tests.browser.support import LiveServer, screenshot


async def test_the_api_docs_render_with_the_internet_blocked(
    page: Page, live_server: LiveServer, blocked_requests: list[str]
) -> None:
    response = await page.goto(f"{live_server.url}/api/docs")
    assert response is not None
    assert response.ok
    create_task = page.locator(
        ".opblock.opblock-post", has=page.locator('[data-path="/api/v1/tasks"]')
    )
    await expect(create_task).to_have_count(1)
    await expect(create_task).to_be_visible()
    await create_task.locator(".opblock-summary").click()  # the operation opens, fully drawn
    await expect(create_task.locator(".opblock-body")).to_be_visible()
    await screenshot(page, "api-docs")
    assert blocked_requests == []


async def test_the_docs_page_names_only_its_own_assets(client: httpx.AsyncClient) -> None:
    page = (await client.get("/api/docs")).text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources, page
    assert all(s.startswith("/api/") for s in sources), sources
    assert '"validatorUrl": null' in page  # no badge fetched from swagger.io on a public host
    for asset in sources:
        assert (await client.get(asset)).status_code == 200, asset
    assert (await client.get("/api/openapi.json")).json()["paths"]["/api/v1/tasks"]["post"]
