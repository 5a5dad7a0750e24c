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
accent_colour = "#0f5132"
terms = '''
## Refunds

Within 14 days. <script>alert(1)</script>
'''

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


async def test_landing_shows_the_example_branding(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<title>Saassy · We run your tasks for you.</title>" in page
    assert 'href="/signup"' in page
    assert 'href="/pricing"' in page
    assert "Isolated" in page  # the example's features


async def test_pricing_lists_the_public_plans(client: httpx.AsyncClient) -> None:
    page = (await client.get("/pricing")).text
    for text in ("Free", "$0", "Starter", "$19", "1,000", "Pro", "$49", "10,000", "Enterprise"):
        assert text in page


async def test_docs_lead_to_the_offline_api_reference_and_the_cli(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get("/docs")).text
    assert 'href="/api/docs"' in page
    assert 'href="/api/openapi.json"' in page
    assert "curl http://127.0.0.1:8000/api/v1/tasks" in page  # the configured base URL
    assert "saassy login" in page


async def test_pages_follow_the_operators_catalog(operator_client: httpx.AsyncClient) -> None:
    page = (await operator_client.get("/")).text
    assert "Clipper &lt;Studio&gt;" in page  # escaped, never markup
    assert "<Studio>" not in page
    assert "Your videos, cut while you sleep." in page
    assert "mailto:help@clipper.example" in page
    assert "Saassy" not in page
    pricing = (await operator_client.get("/pricing")).text
    assert "Hobby" in pricing
    assert "$5" in pricing
    assert "Custom" in pricing  # a plan without a price
    assert "Internal Only" not in pricing  # not public
    assert "kept until deleted" in pricing  # a plan without retention
    assert "None" not in pricing
    theme = await operator_client.get("/brand/theme.css")
    assert theme.text == ":root { --accent: #0f5132; }\n"


async def test_legal_pages_render_the_operators_markdown_without_html(
    operator_client: httpx.AsyncClient, client: httpx.AsyncClient
) -> None:
    page = (await operator_client.get("/legal/terms")).text
    assert "<h2>Refunds</h2>" in page
    assert "<script>" not in page  # raw HTML in the config is shown as text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    unpublished = (await client.get("/legal/privacy")).text
    assert "has not published its privacy policy" in unpublished
    assert (await client.get("/legal/cookies")).status_code == 404


async def test_the_logo_is_served_as_an_inert_image(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    (tmp_path / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>')
    path = tmp_path / "saassy.toml"
    path.write_text(
        CATALOG.replace('help@clipper.example"', 'help@clipper.example"\nlogo = "logo.svg"')
    )
    app = create_app(settings_factory(config=path), background=False)
    async with app.router.lifespan_context(app), client_for(app) as client:
        response = await client.get("/brand/logo")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/svg+xml"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert 'src="/brand/logo"' in (await client.get("/")).text
        favicon = await client.get("/favicon.ico")
        assert (favicon.status_code, favicon.headers["location"]) == (301, "/brand/logo")


async def test_magic_link_page_posts_the_token_and_leaks_nothing(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/login/magic", params={"token": "secret-token-value"})
    assert response.status_code == 200
    assert 'action="/login/magic/verify"' in response.text
    # Only in the form's hidden field; the page sends no Referer that could carry it.
    assert response.text.count("secret-token-value") == 1
    assert 'name="token" value="secret-token-value"' in response.text
    assert "<script>" not in response.text
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


async def test_pages_are_not_part_of_the_api_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/openapi.json")).json()["paths"]
    assert "/" not in paths
    assert "/login/magic" not in paths


async def test_the_favicon_is_the_logo_or_nothing(client: httpx.AsyncClient) -> None:
    response = await client.get("/favicon.ico")
    assert response.status_code == 204
