"""The server-rendered dashboard shell."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from saassy.app import create_app
from saassy.config import Settings
from tests.conftest import client_for

CATALOG = """
default_plan = "hobby"

[branding]
name = "Clipper <Studio>"
tagline = "Your videos, cut while you sleep."
support_email = "help@clipper.example"

[plans.hobby]
name = "Hobby"
price_usd_month = 5
tasks_per_month = 250

[plans.studio]
name = "Studio"
max_concurrent_tasks = 8

[plans.internal]
name = "Internal Only"
public = false
"""


@pytest.fixture
async def operator_client(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app configured with the operator's own saassy.toml."""
    path = tmp_path / "saassy.toml"
    path.write_text(CATALOG)
    app = create_app(settings_factory(config=path), background=False)
    async with app.router.lifespan_context(app), client_for(app) as client:
        yield client


async def test_home_shows_the_example_branding_and_plans(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<title>Saassy</title>" in page
    assert "We run your tasks for you." in page
    for row in ("Free", "$0", "Starter", "$19", "1,000", "Pro", "$49", "10,000", "Enterprise"):
        assert row in page
    assert 'href="/api/docs"' in page
    assert 'href="/api/openapi.json"' in page
    assert "curl -X POST http://saassy.test/api/v1/auth/signup" in page


async def test_home_follows_the_operators_catalog(operator_client: httpx.AsyncClient) -> None:
    page = (await operator_client.get("/")).text
    assert "Clipper &lt;Studio&gt;" in page  # escaped, never markup
    assert "<Studio>" not in page
    assert "Your videos, cut while you sleep." in page
    assert "mailto:help@clipper.example" in page
    assert "Hobby" in page
    assert "$5" in page
    assert "(default)" in page
    assert "Studio</strong>" in page
    assert "custom" in page  # a plan without a price
    assert "Internal Only" not in page  # not public
    assert "Saassy" not in page.split("<main>")[0]


async def test_magic_link_page_posts_the_token_to_the_api_and_leaks_nothing(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/login/magic", params={"token": "secret-token-value"})
    assert response.status_code == 200
    assert "/api/v1/auth/magic-link/verify" in response.text
    assert "secret-token-value" not in response.text  # read from the address by the script
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


async def test_invitation_page_explains_how_to_accept(client: httpx.AsyncClient) -> None:
    response = await client.get("/invitations/accept", params={"token": "invite-token-value"})
    assert response.status_code == 200
    assert "invited" in response.text
    assert "invite-token-value" not in response.text
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_pages_are_not_part_of_the_api_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert "/login/magic" not in paths
