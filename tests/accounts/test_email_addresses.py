"""Reserved-domain addresses (.test, .example, .invalid, .localhost) work outside production,
where set-ups use them, and are refused in production, where no mail can reach them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from saassy.app import create_app
from saassy.config import Settings
from tests.conftest import client_for

PASSWORD = "correct horse battery"
RESERVED = ["ada@lab.test", "ada@shop.example", "ada@nowhere.invalid", "ada@localhost"]


@pytest.mark.parametrize("env", ["development", "test"])
@pytest.mark.parametrize("email", RESERVED)
async def test_reserved_domains_sign_up_outside_production(
    settings_factory: Callable[..., Settings], env: str, email: str
) -> None:
    app = create_app(settings_factory(env=env), background=False)
    async with app.router.lifespan_context(app), client_for(app) as client:
        created = await client.post(
            "/api/v1/auth/signup", json={"email": email.upper(), "password": PASSWORD}
        )
        assert created.status_code == 201, created.text
        assert created.json()["user"]["email"] == email
        login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text


@pytest.fixture
async def production(settings_factory: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_factory(env="production"), background=False)
    async with app.router.lifespan_context(app), client_for(app) as client:
        yield client


@pytest.mark.parametrize("email", RESERVED)
async def test_production_refuses_reserved_domains_clearly(
    production: httpx.AsyncClient, email: str
) -> None:
    for path, body in [
        ("/api/v1/auth/signup", {"email": email, "password": PASSWORD}),
        ("/api/v1/auth/magic-link", {"email": email}),
    ]:
        response = await production.post(path, json=body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "email_reserved_domain"
        assert error["field"] == "email"
        assert "reserved domain" in error["message"]


async def test_production_refuses_inviting_a_reserved_address(
    production: httpx.AsyncClient,
) -> None:
    created = await production.post(
        "/api/v1/auth/signup", json={"email": "owner@example.com", "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    response = await production.post(
        f"/api/v1/organizations/{body['organization']['id']}/invitations",
        json={"email": "friend@team.test", "role": "member"},
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "email_reserved_domain"


@pytest.mark.parametrize("email", ["ada@", "ada@lab..test", "a b@lab.test", "ada@home.local"])
async def test_syntax_is_still_checked_on_reserved_domains(
    client: httpx.AsyncClient, email: str
) -> None:
    response = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "email"
    assert error["message"].startswith("email: value is not a valid email address")
