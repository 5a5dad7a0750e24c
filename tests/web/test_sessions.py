"""Dashboard sign-in: cookie sessions, CSRF on every form, log-out, and other tenants' ids."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from http.cookies import SimpleCookie

import httpx
import pytest
from fastapi import FastAPI

from saassy.app import create_app
from saassy.config import Settings
from tests.conftest import SignUp
from tests.web.support import PASSWORD, browser_for, csrf_token, sign_up, submit


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as client:
        yield client


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    found = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        found.update({name: cookie for name in cookie})
    return found


async def test_sign_up_starts_an_http_only_session(browser: httpx.AsyncClient) -> None:
    token = await csrf_token(browser, "/signup")
    response = await browser.post(
        "/signup",
        data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    session = set_cookies(response)["saassy_session"]["saassy_session"]
    assert session["httponly"] is True
    assert session["samesite"] == "lax"
    assert session["secure"] is True  # outside development
    home = await browser.get("/app")
    assert home.status_code == 200
    assert "ada@example.com" in home.text
    assert home.headers["cache-control"] == "no-store"


async def test_a_form_without_the_csrf_token_is_refused(browser: httpx.AsyncClient) -> None:
    await csrf_token(browser, "/signup")  # the browser has its CSRF cookie
    response = await browser.post("/signup", data={"email": "x@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert "did not come from this site" in response.text
    wrong = await browser.post(
        "/signup",
        data={"email": "x@example.com", "password": PASSWORD, "csrf_token": "0" * 64},
    )
    assert wrong.status_code == 403
    assert (await browser.get("/app")).status_code == 303  # nobody was signed up or in


async def test_a_token_from_another_browser_is_refused(app: FastAPI) -> None:
    async with browser_for(app) as attacker, browser_for(app) as victim:
        stolen = await csrf_token(attacker, "/signup")
        await csrf_token(victim, "/signup")
        response = await victim.post(
            "/signup", data={"email": "v@example.com", "password": PASSWORD, "csrf_token": stolen}
        )
        assert response.status_code == 403


async def test_sign_up_errors_are_shown_beside_their_fields(browser: httpx.AsyncClient) -> None:
    response = await submit(
        browser, "/signup", {"email": "not-an-address", "password": "short"}, page="/signup"
    )
    assert response.status_code == 422
    assert 'id="f-email-error"' in response.text
    assert 'id="f-password-error"' in response.text
    assert 'aria-describedby="f-password-help f-password-error"' in response.text
    assert 'value="not-an-address"' in response.text  # what was typed is kept


async def test_log_in_log_out(browser: httpx.AsyncClient, app: FastAPI) -> None:
    email = await sign_up(browser)
    await submit(browser, "/logout", page="/app")
    assert (await browser.get("/app")).headers["location"] == "/login?next=%2Fapp"
    wrong = await submit(browser, "/login", {"email": email, "password": "wrong password"})
    assert wrong.status_code == 401
    assert "Wrong e-mail or password." in wrong.text
    response = await submit(
        browser, "/login", {"email": email, "password": PASSWORD, "next": "/app/tasks?x=1"}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/app/tasks?x=1"
    assert (await browser.get("/app")).status_code == 200


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:x"]
)
async def test_log_in_never_redirects_off_site(browser: httpx.AsyncClient, target: str) -> None:
    email = await sign_up(browser)
    await submit(browser, "/logout", page="/app")
    response = await submit(
        browser, "/login", {"email": email, "password": PASSWORD, "next": target}
    )
    assert response.headers["location"] == "/app"


async def test_logged_out_session_cookie_is_dead(browser: httpx.AsyncClient, app: FastAPI) -> None:
    await sign_up(browser)
    cookie = browser.cookies.get("saassy_session")
    assert cookie
    await submit(browser, "/logout", page="/app")
    async with browser_for(app) as replay:
        replay.cookies.set("saassy_session", cookie, domain="saassy.test")
        assert (await replay.get("/app")).status_code == 303


async def test_switching_to_another_tenants_organization_is_404(
    browser: httpx.AsyncClient, signup: SignUp
) -> None:
    other = await signup()
    await sign_up(browser)
    response = await submit(
        browser, "/app/organization/switch", {"organization_id": other.organization_id}, page="/app"
    )
    assert response.status_code == 404
    assert other.organization_id not in response.text


async def test_unknown_pages_are_helpful_404_pages(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text
    api = await browser.get("/api/v1/no/such/thing")
    assert api.headers["content-type"] == "application/json"


async def test_pages_run_only_their_own_script(browser: httpx.AsyncClient) -> None:
    for path in ("/", "/pricing", "/login", "/signup", "/no/such/page"):
        response = await browser.get(path)
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert "<script>" not in response.text  # no inline script, which the policy would block


async def test_a_planted_csrf_cookie_is_useless_against_a_signed_in_browser(app: FastAPI) -> None:
    async with browser_for(app) as attacker, browser_for(app) as victim:
        planted = await csrf_token(attacker, "/login")  # a token for the attacker's value
        await sign_up(victim)
        victim.cookies.set("saassy_csrf", attacker.cookies["saassy_csrf"], domain="saassy.test")
        response = await victim.post(
            "/app/organization/rename", data={"name": "Owned", "csrf_token": planted}
        )
        assert response.status_code == 403


async def test_signing_in_ends_the_session_the_browser_held(
    browser: httpx.AsyncClient, app: FastAPI
) -> None:
    await sign_up(browser)
    earlier = browser.cookies["saassy_session"]
    token = await csrf_token(browser, "/app")  # a form posted from a signed-in page
    response = await browser.post(
        "/signup",
        data={"email": "second@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    assert browser.cookies["saassy_session"] != earlier
    async with browser_for(app) as replay:
        replay.cookies.set("saassy_session", earlier, domain="saassy.test")
        assert (await replay.get("/app")).status_code == 303


async def test_a_browser_over_its_rate_limit_can_still_log_out(
    settings_factory: Callable[..., Settings],
) -> None:
    app = create_app(settings_factory(dashboard_limit_per_user="3/minute"), background=False)
    async with app.router.lifespan_context(app), browser_for(app) as browser:
        await sign_up(browser)
        token = await csrf_token(browser, "/app")
        while (await browser.get("/app")).status_code != 429:
            pass
        response = await browser.post("/logout", data={"csrf_token": token})
        assert response.status_code == 303
        assert response.headers["location"] == "/login"
