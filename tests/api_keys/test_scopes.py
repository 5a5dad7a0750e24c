"""Scopes and expiry: what a key may do, decided per router; when it stops working."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import update

from saassy.auth.scopes import rule_of
from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import ApiKey, ApiKeyScope
from tests.conftest import Account, SignUp
from tests.organizations.support import bearer

TASK = {"type": "echo", "input": {"hello": "world"}}


async def key_with(
    client: httpx.AsyncClient, account: Account, scopes: list[str] | None = None, **body: Any
) -> dict[str, Any]:
    json: dict[str, Any] = {"name": "scoped", **body}
    if scopes is not None:
        json["scopes"] = scopes
    response = await client.post("/api/v1/api-keys", json=json, headers=account.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_lacks(response: httpx.Response, scope: str) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "insufficient_scope"
    assert error["details"] == {"scope": scope}
    assert scope in error["message"]


async def test_a_read_only_key_reads_but_cannot_submit_a_task(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    reader = await key_with(client, ada, ["read"])
    assert reader["scopes"] == ["read"]
    headers = bearer(reader["key"])

    assert_lacks(await client.post("/api/v1/tasks", json=TASK, headers=headers), "tasks:write")
    for url in ("/api/v1/tasks", "/api/v1/organizations", "/api/v1/task-types", "/api/v1/usage"):
        assert (await client.get(url, headers=headers)).status_code == 200, url
    # The refusal comes before anything else is looked at: no task was made.
    assert (await client.get("/api/v1/tasks", headers=headers)).json()["items"] == []
    assert_lacks(
        await client.put("/api/v1/secrets/TOKEN", json={"value": "x"}, headers=headers), "admin"
    )


async def test_a_tasks_key_submits_and_cancels_but_does_not_administer(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    worker = bearer((await key_with(client, ada, ["tasks:write"]))["key"])
    submitted = await client.post("/api/v1/tasks", json=TASK, headers=worker)
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["id"]
    assert (await client.get(f"/api/v1/tasks/{task_id}", headers=worker)).status_code == 200
    canceled = await client.post(f"/api/v1/tasks/{task_id}/cancel", headers=worker)
    assert canceled.status_code in (200, 202), canceled.text
    assert_lacks(
        await client.put("/api/v1/secrets/TOKEN", json={"value": "x"}, headers=worker), "admin"
    )
    assert_lacks(
        await client.post("/api/v1/schedules", json={}, headers=worker),
        "admin",
    )


async def test_keys_are_admin_by_default_and_the_role_still_applies(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    created = await key_with(client, ada)
    assert created["scopes"] == ["admin"]
    headers = bearer(created["key"])
    assert (await client.post("/api/v1/tasks", json=TASK, headers=headers)).status_code == 202
    # Past the scope check, a key is still a member: storing secrets needs an admin's role.
    stored = await client.put("/api/v1/secrets/TOKEN", json={"value": "x"}, headers=headers)
    assert stored.status_code == 403
    assert stored.json()["error"]["code"] == "role_required"
    both = await key_with(client, ada, ["tasks:write", "read", "read"])
    assert both["scopes"] == ["read", "tasks:write"]


async def test_scopes_are_validated(client: httpx.AsyncClient, signup: SignUp) -> None:
    ada = await signup()
    for scopes in ([], ["write"], ["tasks:read"], "read"):
        response = await client.post(
            "/api/v1/api-keys", json={"name": "x", "scopes": scopes}, headers=ada.headers
        )
        assert response.status_code == 422, (scopes, response.text)
        assert response.json()["error"]["field"].startswith("scopes"), response.text


async def test_an_expired_key_is_401(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    expires = utcnow() + timedelta(hours=1)
    created = await key_with(client, ada, expires_at=expires.isoformat())
    assert created["expires_at"] is not None
    headers = bearer(created["key"])
    assert (await client.get("/api/v1/organizations", headers=headers)).status_code == 200

    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(created["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    # Remembered with its real expiry, which the clock would reach; this moves the expiry.
    ctx.key_cache.clear()
    refused = await client.get("/api/v1/organizations", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "api_key_expired"
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    listed = (await client.get("/api/v1/api-keys", headers=ada.headers)).json()["items"]
    assert listed[0]["expires_at"] is not None


async def test_an_expiry_must_be_in_the_future_and_carry_a_zone(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    naive = (utcnow() + timedelta(days=1)).replace(tzinfo=None).isoformat()
    for expires_at in (past, naive, "tomorrow"):
        response = await client.post(
            "/api/v1/api-keys", json={"name": "x", "expires_at": expires_at}, headers=ada.headers
        )
        assert response.status_code == 422, (expires_at, response.text)
        assert response.json()["error"]["field"] == "expires_at"


def test_every_api_route_has_a_scope_decision(app: FastAPI) -> None:
    """A new route must say what an API key needs to call it (see saassy.auth.scopes)."""
    undecided = []
    decided = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and str(context.path_format).startswith("/api/v1/"):
            rule = rule_of(route)
            if rule is None:
                undecided.append((sorted(route.methods), context.path_format))
            else:
                for method in route.methods:
                    decided[(method, context.path_format)] = rule.needed_for(method)
    assert undecided == []
    # The decisions that matter most, spelled out.
    assert decided[("POST", "/api/v1/tasks")] is ApiKeyScope.tasks_write
    assert decided[("POST", "/api/v1/tasks/{task_id}/cancel")] is ApiKeyScope.tasks_write
    assert decided[("GET", "/api/v1/tasks/{task_id}/logs")] is ApiKeyScope.read
    assert decided[("PUT", "/api/v1/secrets/{name}")] is ApiKeyScope.admin
    assert decided[("POST", "/api/v1/schedules")] is ApiKeyScope.admin
