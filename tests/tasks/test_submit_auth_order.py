"""The submit route authenticates before it reads its headers, as every other route does."""

from __future__ import annotations

import httpx

from tests.conftest import SignUp

TASKS = "/api/v1/tasks"
TASK = {"type": "python", "input": {"code": "print(1)"}}


async def test_a_malformed_organization_header_is_401_without_a_credential(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(TASKS, json=TASK, headers={"Saassy-Organization": "nope"})
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


async def test_a_malformed_organization_header_is_422_naming_it_once_authenticated(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    response = await client.post(
        TASKS, json=TASK, headers=account.headers | {"Saassy-Organization": "nope"}
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "Saassy-Organization"
    assert error["details"]["errors"][0]["type"] == "uuid_parsing"
    assert "x-ratelimit-remaining" in response.headers  # the call was counted
