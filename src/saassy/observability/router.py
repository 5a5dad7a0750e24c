"""`GET /metrics` for Prometheus, behind a bearer token when one is set (always in production)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from saassy.config import Environment, Settings
from saassy.deps import Context
from saassy.kit.errors import Unauthorized
from saassy.observability.exposition import scrape

router = APIRouter(include_in_schema=False)


def metrics_served(settings: Settings) -> bool:
    """Production serves metrics only behind a token: never open to whoever reaches the API."""
    return settings.metrics_token is not None or settings.env is not Environment.production


async def scraper(ctx: Context, authorization: Annotated[str | None, Header()] = None) -> None:
    """Lets the scrape through with `Authorization: Bearer <SAASSY_METRICS_TOKEN>`; without a
    token configured (refused in production), anyone who reaches the server may scrape."""
    token = ctx.settings.metrics_token
    if token is None:
        return
    scheme, _, given = (authorization or "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise Unauthorized(
            "Metrics need the bearer token set in SAASSY_METRICS_TOKEN.",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )


@router.get("/metrics", dependencies=[Depends(scraper)])
async def metrics(ctx: Context) -> Response:
    # The classic text format (0.0.4): what every Prometheus and agent version reads.
    return Response(await scrape(ctx.sessionmaker), media_type=CONTENT_TYPE_PLAIN_0_0_4)
