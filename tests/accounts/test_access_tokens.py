"""Access tokens (JWT): anything forged, tampered or expired is a clean 401."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx
import jwt
import pytest

from saassy.config import Settings
from saassy.kit.security import JWT_AUDIENCE, issue_access_token
from saassy.kit.time import utcnow
from tests.conftest import TEST_SECRET, SignUp


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def claims_of(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims


def assert_refused(response: httpx.Response, code: str = "invalid_token") -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


async def test_a_tampered_payload_is_refused(client: httpx.AsyncClient, signup: SignUp) -> None:
    victim, attacker = await signup(), await signup()
    header, _, signature = attacker.access_token.split(".")
    forged = {**claims_of(attacker.access_token), "sub": victim.user_id}
    assert_refused(await me(client, f"{header}.{_b64(forged)}.{signature}"))
    assert (await me(client, attacker.access_token)).status_code == 200


async def test_alg_none_is_refused(client: httpx.AsyncClient, signup: SignUp) -> None:
    account = await signup()
    unsigned = jwt.encode(claims_of(account.access_token), key="", algorithm="none")
    assert_refused(await me(client, unsigned))
    # Also with an empty signature glued onto a valid-looking header and payload.
    header = _b64({"alg": "none", "typ": "JWT"})
    assert_refused(await me(client, f"{header}.{_b64(claims_of(account.access_token))}."))


async def test_a_token_signed_with_another_secret_is_refused(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    other_secret = "another-secret-0123456789abcdefghijklmnopqrstuvwxyz"
    forged = jwt.encode(claims_of(account.access_token), other_secret, algorithm="HS256")
    assert_refused(await me(client, forged))
    assert other_secret != TEST_SECRET


async def test_an_expired_token_is_refused(client: httpx.AsyncClient, signup: SignUp) -> None:
    account = await signup()
    expired, _ = issue_access_token(uuid.UUID(account.user_id), TEST_SECRET, timedelta(seconds=-5))
    assert_refused(await me(client, expired), code="token_expired")


async def test_tokens_expire_after_the_configured_ttl(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(access_token_ttl=timedelta(minutes=2))
    token, expires_at = issue_access_token(
        uuid.uuid4(), settings.signing_secret, settings.access_token_ttl
    )
    assert timedelta(seconds=110) < expires_at - utcnow() <= timedelta(minutes=2)
    assert claims_of(token)["aud"] == JWT_AUDIENCE


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub3QtYS11dWlkIn0.c2ln",
        "é" * 10,
        "x" * 10_000,
    ],
)
async def test_malformed_tokens_are_refused_not_500(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get(
        "/api/v1/me", headers=[(b"Authorization", f"Bearer {token}".encode("latin-1"))]
    )
    assert response.status_code == 401
    assert set(response.json()["error"]) >= {"code", "message"}


async def test_a_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    account = await signup()
    assert_refused(await me(client, account.refresh_token))
    wrong_type = jwt.encode(
        {**claims_of(account.access_token), "typ": "refresh"}, TEST_SECRET, algorithm="HS256"
    )
    assert_refused(await me(client, wrong_type))
