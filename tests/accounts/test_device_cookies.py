"""A guesser cannot lock the owner out: 60 wrong passwords from 15 addresses use up the
account's login budget, yet the owner signs in from a device that signed in before (its device
cookie); from a never-seen address the account's limit holds (429 with Retry-After). Through a
real server, with the proxy trusted so that X-Forwarded-For picks the guessers' addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from http.cookies import SimpleCookie

import httpx
import pytest

from saassy.accounts.devices import COOKIE_PATHS, COOKIE_PREFIX
from saassy.app import create_app
from saassy.config import Settings
from tests.processes import serving

LOGIN = "/api/v1/auth/login"
SIGNUP = "/api/v1/auth/signup"
PASSWORD = "correct horse battery"
WRONG = "not the password"
OWNER_DEVICE = "192.0.2.10"


@pytest.fixture
async def server(settings_factory: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    # The login limits are the defaults: 5/15 min per (account, IP), 50/hour per account.
    app = create_app(settings_factory(trusted_proxies=["127.0.0.1"]), background=False)
    async with (
        app.router.lifespan_context(app),
        serving(app) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield client


def device_cookie(response: httpx.Response) -> tuple[str, str]:
    """The device cookie the answer set (once per sign-in path), its attributes checked:
    (name, value)."""
    found = []
    for header in response.headers.get_list("set-cookie"):
        cookies: SimpleCookie = SimpleCookie()
        cookies.load(header)
        found += [(n, m) for n, m in cookies.items() if n.startswith(COOKIE_PREFIX)]
    assert {m["path"] for _, m in found} == set(COOKIE_PATHS)
    assert len({(n, m.value) for n, m in found}) == 1  # one cookie, sent to both paths
    for _, morsel in found:
        assert morsel["httponly"] is True
        assert morsel["samesite"] == "lax"
        assert morsel["secure"] is True  # outside development
        assert int(morsel["max-age"]) > 0
    name, morsel = found[0]
    return name, morsel.value


async def login(
    client: httpx.AsyncClient,
    email: str,
    password: str,
    address: str,
    cookie: tuple[str, str] | None = None,
) -> httpx.Response:
    headers = {"X-Forwarded-For": address}
    if cookie is not None:  # by hand: a Secure cookie is never sent over http by a cookie jar
        headers["Cookie"] = f"{cookie[0]}={cookie[1]}"
    return await client.post(LOGIN, json={"email": email, "password": password}, headers=headers)


async def test_guesses_from_everywhere_do_not_lock_the_owner_out_of_their_device(
    server: httpx.AsyncClient,
) -> None:
    email = "owner@example.com"
    signup = await server.post(
        SIGNUP,
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.9"},
    )
    assert signup.status_code == 201, signup.text
    signed_in = await login(server, email, PASSWORD, OWNER_DEVICE)
    assert signed_in.status_code == 200, signed_in.text
    device = device_cookie(signed_in)

    answers = [
        (await login(server, email, WRONG, f"198.51.100.{n}")).status_code
        for n in range(15)
        for _ in range(4)
    ]
    # The account's budget is 50 / hour and the owner's sign-in took one: 49 guesses fit.
    assert answers[:49] == [401] * 49
    assert answers[49:] == [429] * 11

    # A never-seen address: the account's limit holds, and says when it frees a slot.
    stranger = await login(server, email, PASSWORD, "203.0.113.77")
    assert stranger.status_code == 429
    assert 0 < int(stranger.headers["Retry-After"]) <= 3600
    assert stranger.json()["error"]["code"] == "rate_limited"

    # The owner's device signs in, from its usual address or any other.
    again = await login(server, email, PASSWORD, OWNER_DEVICE, cookie=device)
    assert again.status_code == 200, again.text
    elsewhere = await login(server, email, PASSWORD, "203.0.113.78", cookie=device)
    assert elsewhere.status_code == 200, elsewhere.text
    device_cookie(elsewhere)  # renewed


async def test_a_device_cookie_counts_only_for_its_own_account(server: httpx.AsyncClient) -> None:
    cookies = {}
    for email in ("victim@example.com", "guesser@example.com"):
        created = await server.post(
            SIGNUP,
            json={"email": email, "password": PASSWORD},
            headers={"X-Forwarded-For": "192.0.2.20"},
        )
        assert created.status_code == 201, created.text
        cookies[email] = device_cookie(created)
    victim, (name, value) = "victim@example.com", cookies["victim@example.com"]
    # The guesser's own cookie names another account: no help on the victim's.
    answers = [
        (await login(server, victim, WRONG, "198.51.100.200", cookies["guesser@example.com"]))
        for _ in range(6)
    ]
    assert [answer.status_code for answer in answers] == [401] * 5 + [429]
    device_id, issued, mac = value.split(".")
    tampered = [
        (name, f"{device_id}.{issued}.{mac[:-2]}AA"),
        (name, f"{device_id}.{int(issued) + 1}.{mac}"),
        (name, f"{device_id[:-1]}x.{issued}.{mac}"),
        (cookies["guesser@example.com"][0], value),
    ]
    for cookie in tampered:
        refused = await login(server, victim, WRONG, "198.51.100.200", cookie)
        assert refused.status_code == 429, cookie  # not recognised: the address's limit holds
    # The victim's genuine cookie is recognised: its own budget, a plain 401 for a wrong password.
    assert (await login(server, victim, WRONG, "198.51.100.200", (name, value))).status_code == 401


async def test_a_device_has_its_own_small_budget(server: httpx.AsyncClient) -> None:
    email = "typo@example.com"
    created = await server.post(
        SIGNUP,
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.30"},
    )
    device = device_cookie(created)
    answers = [
        (await login(server, email, WRONG, f"198.51.100.{n}", cookie=device)).status_code
        for n in range(6)
    ]
    assert answers == [401] * 5 + [429]  # 5 / 15 minutes per device, wherever it is
    assert (await login(server, email, PASSWORD, "198.51.100.9", cookie=device)).status_code == 429
    # Without the cookie the address's and account's budgets still apply: nothing was counted.
    assert (await login(server, email, PASSWORD, "198.51.100.9")).status_code == 200
