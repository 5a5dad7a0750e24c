"""Who may scrape: the bearer token when one is set; nobody in production without one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from saassy.app import create_app
from saassy.config import ConfigError, Settings, load_settings
from tests.conftest import client_for
from tests.observability.conftest import METRICS_TOKEN


async def client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, background=False)
    async with app.router.lifespan_context(app), client_for(app) as client:
        yield client


@pytest.fixture
async def guarded(settings_factory: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_of(settings_factory(metrics_token=METRICS_TOKEN)):
        yield client


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789-abcdefghij", f"Basic {METRICS_TOKEN}", "Bearer"],
)
async def test_a_scrape_without_the_token_is_refused(
    guarded: httpx.AsyncClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await guarded.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "unauthorized"
    assert "saassy_" not in response.text


async def test_the_token_lets_the_scrape_through(guarded: httpx.AsyncClient) -> None:
    response = await guarded.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert "saassy_database_up 1.0" in response.text


async def test_production_without_a_token_serves_no_metrics(
    settings_factory: Callable[..., Settings],
) -> None:
    async for client in client_of(settings_factory(env="production")):
        assert (await client.get("/metrics")).status_code == 404


async def test_production_with_a_token_serves_them_behind_it(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(env="production", metrics_token=METRICS_TOKEN)
    async for client in client_of(settings):
        assert (await client.get("/metrics")).status_code == 401
        authorized = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        assert (await client.get("/metrics", headers=authorized)).status_code == 200


def test_a_short_token_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAASSY_METRICS_TOKEN", "short")
    with pytest.raises(ConfigError, match="SAASSY_METRICS_TOKEN: shorter than 24 characters"):
        load_settings()


def test_a_multiprocess_dir_that_is_not_writable_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, settings_factory: Callable[..., Settings], tmp_path: object
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/metrics")
    with pytest.raises(ConfigError, match="PROMETHEUS_MULTIPROC_DIR=/nonexistent/metrics: not a"):
        create_app(settings_factory(), background=False)
