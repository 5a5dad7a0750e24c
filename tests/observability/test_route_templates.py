"""Route templates, learnt as requests need them: each inclusion of a route keeps its own, the
first request to a later inclusion or a later router included, and no route means unmatched."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI
from starlette.types import Receive, Scope, Send

from saassy.observability.metrics import UNMATCHED_ROUTE
from saassy.observability.requests import RouteTemplates


async def test_each_request_is_labelled_by_the_inclusion_that_served_it() -> None:
    items = APIRouter()

    @items.get("/items/{item_id}")
    async def read_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    later = APIRouter(prefix="/later")

    @later.get("/{name}")
    async def read_later(name: str) -> dict[str, str]:
        return {"name": name}

    app = FastAPI()
    app.include_router(items, prefix="/a")
    app.include_router(items, prefix="/b")
    app.include_router(later)
    templates = RouteTemplates(app)
    labels: list[str] = []

    async def labelled(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        labels.append(templates.of(scope))

    transport = httpx.ASGITransport(app=labelled)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path in ("/b/items/1", "/a/items/2", "/later/x", "/b/items/3", "/nowhere"):
            await client.get(path)

    assert labels == [
        "/b/items/{item_id}",
        "/a/items/{item_id}",
        "/later/{name}",
        "/b/items/{item_id}",
        UNMATCHED_ROUTE,
    ]
