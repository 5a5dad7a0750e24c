"""Bad input never breaks the API: every body-taking endpoint answers a clean 4xx, never a 500.

One table of endpoints (with a valid body and its string fields) crossed with kinds of bad input:
missing and wrongly typed fields, a 1 MB string, NUL and lone-surrogate characters, invalid UTF-8,
malformed JSON, an empty body, the wrong JSON type, deep nesting and bodies over the size limit.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from saassy.accounts.service import register_user
from saassy.config import Settings
from saassy.context import AppContext
from tests.conftest import CLIENT_IP, Account, SignUp

MEGABYTE_STRING = "a" * (1024 * 1024)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: dict[str, Any]
    strings: tuple[str, ...]  # the fields that take a string
    auth: str | None = None  # None, "user" or "staff"
    required: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/v1/auth/signup",
        {"email": "new@example.com", "password": "correct horse battery", "organization": "Acme"},
        ("email", "password", "organization"),
        required=("email", "password"),
    ),
    Endpoint(
        "POST",
        "/api/v1/auth/login",
        {"email": "new@example.com", "password": "correct horse battery"},
        ("email", "password"),
    ),
    Endpoint("POST", "/api/v1/auth/refresh", {"refresh_token": "abc_DEF-123"}, ("refresh_token",)),
    Endpoint("POST", "/api/v1/auth/logout", {"refresh_token": "abc_DEF-123"}, ("refresh_token",)),
    Endpoint("POST", "/api/v1/auth/magic-link", {"email": "new@example.com"}, ("email",)),
    Endpoint("POST", "/api/v1/auth/magic-link/verify", {"token": "abc_DEF-123"}, ("token",)),
    Endpoint("POST", "/api/v1/api-keys", {"name": "CI"}, ("name",), auth="user"),
    Endpoint("POST", "/api/v1/organizations", {"name": "Acme"}, ("name",), auth="user"),
    Endpoint("PATCH", "/api/v1/organizations/{org}", {"name": "Acme"}, ("name",), auth="user"),
    Endpoint(
        "POST",
        "/api/v1/organizations/{org}/invitations",
        {"email": "friend@example.com", "role": "member"},
        ("email", "role"),
        auth="user",
        required=("email",),
    ),
    Endpoint(
        "PATCH",
        "/api/v1/organizations/{org}/members/{user}",
        {"role": "admin"},
        ("role",),
        auth="user",
    ),
    Endpoint("POST", "/api/v1/invitations/accept", {"token": "abc_DEF-123"}, ("token",), "user"),
    Endpoint(
        "PUT",
        "/api/v1/admin/organizations/{org}/plan",
        {"plan": "pro"},
        ("plan",),
        auth="staff",
    ),
]


@dataclass(frozen=True)
class BadBody:
    """A request body, its Content-Type, and what a client should hear back."""

    content: bytes | Callable[[], Any]
    content_type: str = "application/json"
    statuses: frozenset[int] = frozenset({400, 422})
    field: str | None = None  # the field a 422 must name


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode()


def whole_body_cases(max_body_bytes: int) -> dict[str, BadBody]:
    over = max_body_bytes + 1

    def streamed() -> Any:
        # No Content-Length: the size limit must hold while the body arrives.
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(over // 65536 + 1):
                yield b" " * 65536

        return chunks()

    return {
        "malformed JSON": BadBody(b'{"email": "a@example.com", ', statuses=frozenset({400})),
        "invalid UTF-8": BadBody(
            b'{"email": "\xff\xfe\xfd@example.com"}', statuses=frozenset({400})
        ),
        "empty body": BadBody(b"", statuses=frozenset({422})),
        "JSON array": BadBody(b"[]", statuses=frozenset({422})),
        "JSON string": BadBody(b'"hello"', statuses=frozenset({422})),
        "JSON null": BadBody(b"null", statuses=frozenset({422})),
        "deep nesting": BadBody(b"[" * 100_000 + b"]" * 100_000),
        "plain text": BadBody(b"email=a@example.com", content_type="text/plain"),
        "over-large body": BadBody(b"x" * over, statuses=frozenset({413})),
        "over-large streamed body": BadBody(streamed, statuses=frozenset({413})),
    }


def field_cases(endpoint: Endpoint) -> dict[str, BadBody]:
    cases: dict[str, BadBody] = {}
    for name in endpoint.required or tuple(endpoint.body):
        body = {k: v for k, v in endpoint.body.items() if k != name}
        cases[f"missing {name}"] = BadBody(json_body(body), statuses=frozenset({422}), field=name)
    for name in endpoint.strings:
        for label, value in [
            ("a number", 12345),
            ("an object", {"nested": True}),
            ("a list", ["x"]),
            ("a 1 MB string", MEGABYTE_STRING),
        ]:
            body = {**endpoint.body, name: value}
            cases[f"{name} is {label}"] = BadBody(
                json_body(body), statuses=frozenset({422}), field=name
            )
        # Characters a database refuses (PostgreSQL text cannot hold NUL, nor UTF-8 a surrogate)
        # must be turned away as input, or safely handled, never fail in the database.
        for label, value in [("a NUL", "a\u0000b"), ("a lone surrogate", "a\ud800b")]:
            body = {**endpoint.body, name: value}
            cases[f"{name} holds {label}"] = BadBody(
                json.dumps(body).encode(), statuses=frozenset(range(200, 500))
            )
    return cases


def endpoint_params() -> list[Any]:
    return [pytest.param(endpoint, id=endpoint.name) for endpoint in ENDPOINTS]


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Like the shared client, but a crash comes back as the 500 a real client would get."""
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 51000), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://saassy.test") as c:
        yield c


async def staff_headers(ctx: AppContext, client: httpx.AsyncClient) -> dict[str, str]:
    async with ctx.sessionmaker() as session:
        await register_user(
            session,
            ctx.settings,
            email="staff@example.com",
            password="staff password",
            is_staff=True,
        )
        await session.commit()
    login = await client.post(
        "/api/v1/auth/login", json={"email": "staff@example.com", "password": "staff password"}
    )
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def assert_clean_error(response: httpx.Response, expected: BadBody, endpoint: Endpoint) -> None:
    where = f"{endpoint.name} -> {response.status_code} {response.text[:200]}"
    assert response.status_code < 500, where
    if response.status_code < 400:
        return  # only the NUL/surrogate cases may succeed: the value was handled safely
    assert response.status_code in expected.statuses, where
    assert response.headers["content-type"].startswith("application/json"), where
    body = response.json()
    assert set(body) == {"error"}, where
    assert isinstance(body["error"]["code"], str), where
    assert body["error"]["code"], where
    assert isinstance(body["error"]["message"], str), where
    assert body["error"]["message"], where
    assert len(response.content) < 64 * 1024, "an error must not echo a huge input back"
    if expected.field is not None:
        assert body["error"]["field"] == expected.field, where


async def send_each(
    endpoint: Endpoint,
    cases: dict[str, BadBody],
    client: httpx.AsyncClient,
    signup: SignUp,
    ctx: AppContext,
) -> None:
    """Send every case with fresh credentials; report all the cases that failed at once."""
    path, auth = endpoint.path, {}
    if endpoint.auth is not None:
        account: Account = await signup()
        path = path.format(org=account.organization_id, user=account.user_id)
        auth = account.headers if endpoint.auth == "user" else await staff_headers(ctx, client)
    failures = []
    for case, bad in cases.items():
        content = bad.content() if callable(bad.content) else bad.content
        response = await client.request(
            endpoint.method,
            path,
            content=content,
            headers={**auth, "Content-Type": bad.content_type},
        )
        try:
            assert_clean_error(response, bad, endpoint)
        except AssertionError as exc:
            failures.append(f"{case}: {str(exc).splitlines()[0]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("endpoint", endpoint_params())
async def test_bad_fields_get_a_422_naming_the_field(
    endpoint: Endpoint, client: httpx.AsyncClient, signup: SignUp, ctx: AppContext
) -> None:
    await send_each(endpoint, field_cases(endpoint), client, signup, ctx)


@pytest.mark.parametrize("endpoint", endpoint_params())
async def test_bad_bodies_get_a_clean_4xx(
    endpoint: Endpoint,
    settings: Settings,
    client: httpx.AsyncClient,
    signup: SignUp,
    ctx: AppContext,
) -> None:
    await send_each(endpoint, whole_body_cases(settings.max_body_bytes), client, signup, ctx)


@pytest.mark.parametrize(
    "content", [b"[" * 100_000 + b"]" * 100_000, b'{"input": {"n": ' + b"9" * 5000 + b"}}"]
)
async def test_a_body_past_the_parsers_limits_says_which_limits(
    client: httpx.AsyncClient, signup: SignUp, content: bytes
) -> None:
    account = await signup()
    response = await client.post(
        "/api/v1/tasks",
        content=content,
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_body"
    assert "nested at most about 1,000 levels" in error["message"]
    assert "4,300 digits" in error["message"]
