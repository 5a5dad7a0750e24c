"""Calling the webhook endpoints' API as a customer would."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Account

ENDPOINTS = "/api/v1/webhooks/endpoints"


async def create_endpoint(
    client: httpx.AsyncClient, account: Account, url: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(ENDPOINTS, json={"url": url, **fields}, headers=account.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
