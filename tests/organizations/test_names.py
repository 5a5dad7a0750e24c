"""Names are trimmed before their length is checked; a blank name is refused, saying so."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import SignUp

PADDED = " " * 40 + "\u3000\u200b" + "N" * 118 + "\ufeff" + " " * 40  # 200 characters


@pytest.mark.parametrize(
    ("path", "limit"), [("/api/v1/organizations", 120), ("/api/v1/api-keys", 100)]
)
async def test_a_name_is_judged_by_what_is_left_after_trimming(
    client: httpx.AsyncClient, signup: SignUp, path: str, limit: int
) -> None:
    account = await signup()
    kept = "N" * limit
    padded = "  \t" + kept + " \u00a0 " * 30
    assert len(padded) > limit
    created = await client.post(path, json={"name": padded}, headers=account.headers)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == kept
    too_long = await client.post(path, json={"name": f"  {kept}N  "}, headers=account.headers)
    assert too_long.status_code == 422
    assert too_long.json()["error"]["field"] == "name"


async def test_a_200_character_name_that_trims_under_the_limit_is_accepted(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup(organization=PADDED)
    me = await client.get("/api/v1/me", headers=account.headers)
    assert me.json()["organizations"][0]["organization"]["name"] == "N" * 118


@pytest.mark.parametrize("blank", ["", "   ", "\t\n", "\u3000\u00a0", "\u200b\ufeff "])
@pytest.mark.parametrize("path", ["/api/v1/organizations", "/api/v1/api-keys"])
async def test_a_blank_name_is_refused_clearly(
    client: httpx.AsyncClient, signup: SignUp, path: str, blank: str
) -> None:
    account = await signup()
    response = await client.post(path, json={"name": blank}, headers=account.headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "name"
    assert error["message"] == "name: must not be blank (it holds no visible character)"


async def test_control_characters_inside_a_name_are_still_refused(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    response = await client.post(
        "/api/v1/organizations", json={"name": " Acme\nInc "}, headers=account.headers
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "name: must not contain control characters"


async def test_a_lone_surrogate_in_a_name_is_refused_as_such(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    response = await client.post(
        "/api/v1/organizations",
        content=b'{"name": "Acme \\ud800"}',
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "name"
    assert error["message"] == "name: holds a lone surrogate: it is not valid Unicode text"


@pytest.mark.parametrize("control", ["\u202e", "\u202d", "\u2066", "\u2067", "\u2068"])
@pytest.mark.parametrize("path", ["/api/v1/organizations", "/api/v1/api-keys"])
async def test_bidirectional_overrides_inside_a_name_are_refused(
    client: httpx.AsyncClient, signup: SignUp, path: str, control: str
) -> None:
    account = await signup()
    name = f"Acme {control}cod.exe"
    response = await client.post(path, json={"name": name}, headers=account.headers)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "name"
    assert "bidirectional" in response.json()["error"]["message"]


async def test_right_to_left_text_and_its_marks_are_names_like_any_other(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    name = "\u05e9\u05dc\u05d5\u05dd \u200fACME\u200e Ltd"
    response = await client.post(
        "/api/v1/organizations", json={"name": name}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name
