"""The browser harness itself: requests off this machine are refused and counted, axe-core
catches a serious problem, screenshots come at both widths, e-mailed links lead to the server."""

from __future__ import annotations

import struct

import httpx
import pytest
from playwright.async_api import Page

from tests.browser.support import LiveServer, assert_accessible, links_in, mails_to, screenshot
from tests.conftest import SignUp

UNLABELLED = '<html lang="en"><title>t</title><main><img src="/logo.png"></main></html>'


async def test_a_request_off_this_machine_is_refused_and_counted(
    page: Page, blocked_requests: list[str]
) -> None:
    await page.set_content(
        '<html lang="en"><title>t</title><script src="https://cdn.example.com/x.js"></script>'
        '<img src="http://203.0.113.9/pixel.png" alt="pixel"></html>'
    )
    assert sorted(blocked_requests) == [
        "http://203.0.113.9/pixel.png",
        "https://cdn.example.com/x.js",
    ]
    blocked_requests.clear()  # seen; else the page fixture fails this test, as it should


async def test_axe_fails_on_a_serious_problem(page: Page) -> None:
    await page.set_content(UNLABELLED)
    with pytest.raises(pytest.fail.Exception) as failure:
        await assert_accessible(page)
    assert "image-alt (critical)" in str(failure.value)
    assert "main > img" in str(failure.value) or "img" in str(failure.value)
    await assert_accessible(page, exclude=["img"])


async def test_screenshots_at_both_widths(page: Page) -> None:
    await page.set_content('<html lang="en"><title>t</title><h1>Hello</h1></html>')
    paths = await screenshot(page, "harness")
    widths = []
    for path in paths:
        header = path.read_bytes()[:24]
        assert header[:8] == b"\x89PNG\r\n\x1a\n"
        widths.append(struct.unpack(">I", header[16:20])[0])
    assert [p.name for p in paths] == ["harness-1280.png", "harness-390.png"]
    assert widths == [1280, 390]
    assert page.viewport_size == {"width": 1280, "height": 800}


def test_links_in_an_email_body() -> None:
    body = "Confirm: http://127.0.0.1:8000/login/magic?token=abc_-1\nThanks."
    assert links_in(body) == ["http://127.0.0.1:8000/login/magic?token=abc_-1"]


async def test_a_mailed_link_points_at_the_live_server(
    page: Page, live_server: LiveServer, client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    response = await client.post("/api/v1/auth/magic-link", json={"email": account.email})
    assert response.status_code == 202, response.text
    mails = await mails_to(live_server, account.email)
    links = [
        link for mail in mails for link in links_in(mail.body) if "/login/magic?token=" in link
    ]
    assert len(links) == 1, mails
    assert links[0].startswith(f"{live_server.url}/login/magic?token=")
    opened = await page.goto(links[0])  # whatever the dashboard shows there, this server answers
    assert opened is not None
    assert opened.url == links[0]
