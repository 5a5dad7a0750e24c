"""Bad input to the auth endpoints is a clear 4xx, never a 500."""

from __future__ import annotations

import httpx
import pytest

ENDPOINTS = {
    "/api/v1/auth/login": "email",
    "/api/v1/auth/refresh": "refresh_token",
    "/api/v1/auth/logout": "refresh_token",
    "/api/v1/auth/magic-link": "email",
    "/api/v1/auth/magic-link/verify": "token",
}
BAD_BODIES: dict[str, bytes] = {
    "empty object": b"{}",
    "malformed json": b'{"token": ',
    "invalid utf-8": b'{"token": "\xff\xfe"}',
    "a list": b"[]",
    "null": b"null",
    "wrong types": b'{"email": 5, "password": [], "refresh_token": {}, "token": true}',
    "lone surrogate": b'{"email": "\\ud800@x.io", "refresh_token": "\\ud800", "token": "\\ud800"}',
    "one megabyte": b'{"email": "%s", "refresh_token": "%s", "token": "%s"}'
    % ((b"a" * 2**20,) * 3),
    "not a token": b'{"email": "a b", "refresh_token": "../../etc", "token": "tok en"}',
}


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
async def test_bad_bodies_get_a_clear_4xx(
    client: httpx.AsyncClient, path: str, body: bytes
) -> None:
    response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    error = response.json()["error"]
    assert error["code"]
    assert error["message"]


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_a_missing_field_is_named(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, json={})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == ENDPOINTS[path]
