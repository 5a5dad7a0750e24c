"""A 405 lists every method the path allows, across all the routes that share the path."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import SignUp


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/tasks", "GET, POST"),  # list and submit: two routes
        ("PATCH", "/api/v1/api-keys", "GET, POST"),
        ("POST", "/api/v1/organizations/{org}", "GET, PATCH, DELETE"),  # three routes
        ("DELETE", "/api/v1/auth/login", "POST"),
    ],
)
async def test_allow_names_every_method_of_the_path(
    client: httpx.AsyncClient, signup: SignUp, method: str, path: str, allowed: str
) -> None:
    account = await signup()
    response = await client.request(
        method, path.format(org=account.organization_id), headers=account.headers
    )
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    error = response.json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["message"] == f"{method} is not allowed here; this path allows {allowed}."
    for other in allowed.split(", "):  # each one listed is really served (not a 405)
        answer = await client.request(
            other, path.format(org=account.organization_id), headers=account.headers
        )
        assert answer.status_code != 405, other
