"""`X-Forwarded-For` is believed only from the proxies the operator names (default: none)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

from saassy.app import create_app
from saassy.config import Settings
from tests.processes import serving

REFRESH = "/api/v1/auth/refresh"  # anyone may call it: counted per client address


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, background=False)
    async with (
        app.router.lifespan_context(app),
        serving(app) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        yield client


async def statuses(client: httpx.AsyncClient, *forwarded_for: str) -> list[int]:
    answers = []
    for address in forwarded_for:
        response = await client.post(
            REFRESH, json={"refresh_token": "unknown"}, headers={"X-Forwarded-For": address}
        )
        answers.append(response.status_code)
    return answers


async def test_by_default_a_client_cannot_pick_its_address(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(anonymous_limit_per_ip="2/minute")
    assert settings.trusted_proxies == []
    async with served(settings) as client:
        # Three "addresses", one real one (127.0.0.1): the third is over its limit.
        assert await statuses(client, "198.51.100.1", "198.51.100.2", "198.51.100.3") == [
            401,
            401,
            429,
        ]


async def test_a_named_proxy_is_believed(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(anonymous_limit_per_ip="2/minute", trusted_proxies=["127.0.0.0/8"])
    async with served(settings) as client:
        assert await statuses(client, "198.51.100.1", "198.51.100.2", "198.51.100.3") == [401] * 3
        # The address the proxy saw is what counts: the rightmost one it did not add itself.
        assert await statuses(client, "10.9.9.9, 198.51.100.4", "198.51.100.4") == [401, 401]
        assert await statuses(client, "10.9.9.9, 198.51.100.4") == [429]
