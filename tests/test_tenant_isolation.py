"""Tenants never see each other: every id-bearing endpoint answers another organization's
credentials (a user's access token or an API key) with 404 and nothing of the target.

To cover a new endpoint, add a row to CASES: the route as declared, which of the victim's ids
fill it, and a body (or to HEADER_CASES when it acts on the organization the header names, like
storing a secret under a name). `test_every_id_bearing_route_is_in_the_matrix` fails until you do.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from saassy.context import AppContext
from saassy.kit.time import utcnow
from saassy.models import WebhookMessage
from tests.conftest import Account, SignUp
from tests.organizations.support import (
    add_member,
    bearer,
    create_api_key,
    create_organization,
    invite,
)

ORGS = "/api/v1/organizations/{organization_id}"
COVERED_PREFIXES = (
    "/api/v1/organizations",
    "/api/v1/api-keys",
    "/api/v1/invitations",
    "/api/v1/tasks",
    "/api/v1/secrets",
    "/api/v1/webhooks",
)
TASKS = "/api/v1/tasks"
SECRETS = "/api/v1/secrets"
SPEND_CAP = "/api/v1/billing/spend-cap"
VICTIM_SECRET = {"name": "victim_secret"}
WEBHOOKS = "/api/v1/webhooks/endpoints"
ENDPOINT = WEBHOOKS + "/{endpoint_id}"
VICTIM_ENDPOINT = {"endpoint_id": "victim_endpoint"}
VICTIM_MESSAGE = VICTIM_ENDPOINT | {"message_id": "victim_message"}


@dataclass(frozen=True)
class Case:
    method: str
    route: str
    ids: dict[str, str]  # path parameter -> a key of World.ids
    body: dict[str, Any] | None = None
    # Signed-in users only: an API key is refused before any id is looked at.
    users_only: bool = False

    @property
    def name(self) -> str:
        filled = self.route
        for param, source in self.ids.items():
            filled = filled.replace("{" + param + "}", "{" + source + "}")
        return f"{self.method} {filled.removeprefix('/api/v1')}"


VICTIM_ORG = {"organization_id": "victim_org"}
CASES = [
    Case("GET", ORGS, VICTIM_ORG),
    Case("PATCH", ORGS, VICTIM_ORG, {"name": "Taken over"}),
    Case("DELETE", ORGS, VICTIM_ORG),
    Case("GET", ORGS + "/members", VICTIM_ORG),
    Case(
        "PATCH",
        ORGS + "/members/{user_id}",
        VICTIM_ORG | {"user_id": "victim_member"},
        {"role": "owner"},
    ),
    Case("DELETE", ORGS + "/members/{user_id}", VICTIM_ORG | {"user_id": "victim_member"}),
    Case("DELETE", ORGS + "/members/{user_id}", VICTIM_ORG | {"user_id": "victim_owner"}),
    Case("POST", ORGS + "/invitations", VICTIM_ORG, {"email": "spy@example.net", "role": "owner"}),
    Case("GET", ORGS + "/invitations", VICTIM_ORG),
    Case(
        "DELETE",
        ORGS + "/invitations/{invitation_id}",
        VICTIM_ORG | {"invitation_id": "victim_invitation"},
    ),
    Case("DELETE", "/api/v1/api-keys/{key_id}", {"key_id": "victim_key"}),
    Case("POST", "/api/v1/api-keys/{key_id}/rotate", {"key_id": "victim_key"}, {"overlap_s": 0}),
    Case("GET", TASKS + "/{task_id}", {"task_id": "victim_task"}),
    Case("POST", TASKS + "/{task_id}/cancel", {"task_id": "victim_task"}),
    Case("GET", TASKS + "/{task_id}/logs", {"task_id": "victim_task"}),
    Case("GET", TASKS + "/{task_id}/artifacts", {"task_id": "victim_task"}),
    Case("GET", ORGS + "/audit", VICTIM_ORG),
    Case("POST", ORGS + "/export", VICTIM_ORG, users_only=True),
    Case("GET", SECRETS + "/{name}", VICTIM_SECRET),
    Case("DELETE", SECRETS + "/{name}", VICTIM_SECRET),
    # Webhooks are managed by people: an API key is refused before any id is looked up.
    Case("GET", ENDPOINT, VICTIM_ENDPOINT, users_only=True),
    Case("PATCH", ENDPOINT, VICTIM_ENDPOINT, {"url": "https://spy.example/hook"}, users_only=True),
    Case("DELETE", ENDPOINT, VICTIM_ENDPOINT, users_only=True),
    Case("POST", ENDPOINT + "/rotate-secret", VICTIM_ENDPOINT, users_only=True),
    Case("GET", ENDPOINT + "/messages", VICTIM_ENDPOINT, users_only=True),
    Case("GET", ENDPOINT + "/messages/{message_id}", VICTIM_MESSAGE, users_only=True),
    Case("POST", ENDPOINT + "/messages/{message_id}/redeliver", VICTIM_MESSAGE, users_only=True),
    Case("POST", ENDPOINT + "/test", VICTIM_ENDPOINT, users_only=True),
    # The caller's own organization with the victim's member or invitation in it.
    Case(
        "PATCH",
        ORGS + "/members/{user_id}",
        {"organization_id": "own_org", "user_id": "victim_member"},
        {"role": "member"},
    ),
    Case(
        "DELETE",
        ORGS + "/members/{user_id}",
        {"organization_id": "own_org", "user_id": "victim_member"},
    ),
    Case(
        "DELETE",
        ORGS + "/invitations/{invitation_id}",
        {"organization_id": "own_org", "invitation_id": "victim_invitation"},
    ),
]
# Endpoints acting on the organization named by the `Saassy-Organization` header.
# Routes the matrix does not reach yet: the world has no artifact of the victim's to ask for.
NOT_YET_COVERED = {("GET", TASKS + "/{task_id}/artifacts/{artifact_id}")}

HEADER_CASES = [
    Case("GET", "/api/v1/api-keys", {}),
    Case("POST", "/api/v1/api-keys", {}, {"name": "backdoor"}),
    Case("DELETE", "/api/v1/api-keys/{key_id}", {"key_id": "victim_key"}),
    Case("POST", "/api/v1/api-keys/{key_id}/rotate", {"key_id": "victim_key"}, {"overlap_s": 0}),
    Case("GET", TASKS, {}),
    Case("POST", TASKS, {}, {"type": "echo", "input": {}}),
    Case("GET", TASKS + "/{task_id}", {"task_id": "victim_task"}),
    Case("POST", TASKS + "/{task_id}/cancel", {"task_id": "victim_task"}),
    Case("GET", SECRETS, {}),
    Case("GET", SECRETS + "/{name}", VICTIM_SECRET),
    Case("PUT", SECRETS + "/{name}", VICTIM_SECRET, {"value": "planted by mallory"}),
    Case("DELETE", SECRETS + "/{name}", VICTIM_SECRET),
    Case("GET", SPEND_CAP, {}),
    Case("PUT", SPEND_CAP, {}, {"monthly_cap_usd": "0"}),
    Case("DELETE", SPEND_CAP, {}),
    Case("GET", WEBHOOKS, {}),
    Case("POST", WEBHOOKS, {}, {"url": "https://spy.example/hook"}),
    Case("GET", ENDPOINT, VICTIM_ENDPOINT),
    Case("DELETE", ENDPOINT, VICTIM_ENDPOINT),
]
CREDENTIALS = ["access_token", "api_key"]


@dataclass
class World:
    victim: Account
    victim_org: dict[str, Any]
    victim_key: dict[str, Any]
    attacker_headers: dict[str, dict[str, str]]  # credential kind -> headers
    ids: dict[str, str]
    secrets: list[str]  # nothing of the victim's may appear in an answer to the attacker
    # (organization id, name, updated_at) of the victim's stored secrets.
    vault: list[tuple[str, str, str]]
    message_due: str  # the victim's webhook message's next attempt, as the API shows it


@pytest.fixture
async def world(app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp) -> World:
    victim = await signup("victim.owner@victim.example")
    org = await create_organization(client, victim, "Zephyr Confidential Holdings")
    member = await add_member(client, ctx, signup, victim, org["id"], "admin")
    invitation, _ = await invite(client, ctx, victim, org["id"], "pending.guest@victim.example")
    key = await create_api_key(client, victim, org["id"], name="victim production key")
    task = await client.post(
        TASKS,
        json={"type": "echo", "input": {"note": "victim payroll run"}},
        headers=victim.headers | {"Saassy-Organization": org["id"]},
    )
    assert task.status_code == 202, task.text
    vault = []
    for organization_id in (victim.organization_id, org["id"]):
        stored = await client.put(
            f"{SECRETS}/VICTIM_PAYROLL_TOKEN",
            json={"value": "victim-payroll-secret-value"},
            headers=victim.headers | {"Saassy-Organization": organization_id},
        )
        assert stored.status_code == 201, stored.text
        vault.append((organization_id, "VICTIM_PAYROLL_TOKEN", stored.json()["updated_at"]))

    # In the victim's personal organization (the one its credentials act on by default).
    endpoint = await client.post(
        WEBHOOKS, json={"url": "https://hooks.victim.example/payroll"}, headers=victim.headers
    )
    assert endpoint.status_code == 201, endpoint.text
    async with ctx.sessionmaker() as session, session.begin():
        message = WebhookMessage(
            organization_id=uuid.UUID(victim.organization_id),
            endpoint_id=uuid.UUID(endpoint.json()["id"]),
            event_type="task.succeeded",
            event={"type": "task.succeeded", "data": {"id": "victim-task-event"}},
            next_attempt_at=utcnow() + timedelta(days=1),
        )
        session.add(message)

    shown = await client.get(
        f"{WEBHOOKS}/{endpoint.json()['id']}/messages/{message.id}", headers=victim.headers
    )
    due = shown.json()["next_attempt_at"]

    attacker = await signup("mallory@attacker.example")
    attacker_key = await create_api_key(client, attacker, name="mallory")
    ids = {
        "victim_org": org["id"],
        "victim_owner": victim.user_id,
        "victim_member": member.user_id,
        "victim_invitation": invitation["id"],
        "victim_key": key["id"],
        "victim_task": task.json()["id"],
        "own_org": attacker.organization_id,
        "victim_secret": "VICTIM_PAYROLL_TOKEN",
        "victim_endpoint": endpoint.json()["id"],
        "victim_message": str(message.id),
    }
    secrets = [org["id"], org["name"], victim.user_id, member.user_id, invitation["id"]]
    secrets += [key["id"], key["prefix"], key["name"], victim.email, member.email]
    secrets += [invitation["email"], victim.organization_id]
    secrets += [task.json()["id"], "victim payroll run"]
    secrets += ["VICTIM_PAYROLL_TOKEN", "victim-payroll-secret-value"]
    secrets += [endpoint.json()["id"], "hooks.victim.example", endpoint.json()["secret"]]
    secrets += [str(message.id), "victim-task-event"]
    return World(
        victim=victim,
        victim_org=org,
        victim_key=key,
        attacker_headers={"access_token": attacker.headers, "api_key": bearer(attacker_key["key"])},
        ids=ids,
        secrets=secrets,
        vault=vault,
        message_due=due,
    )


def url_of(case: Case, world: World) -> str:
    return case.route.format(**{param: world.ids[source] for param, source in case.ids.items()})


def assert_not_found_and_silent(response: httpx.Response, world: World, credential: str) -> None:
    assert response.status_code == 404, (credential, response.text)
    assert response.json()["error"]["code"] == "not_found", credential
    for secret in world.secrets:
        assert secret not in response.text, (credential, secret)
        assert secret.lower() not in json.dumps(dict(response.headers)).lower(), credential


async def assert_victim_untouched(client: httpx.AsyncClient, world: World) -> None:
    org_id, owner = world.victim_org["id"], world.victim.headers
    org = await client.get(f"/api/v1/organizations/{org_id}", headers=owner)
    assert org.status_code == 200
    assert org.json()["name"] == world.victim_org["name"]
    members = (await client.get(f"/api/v1/organizations/{org_id}/members", headers=owner)).json()
    assert {m["user_id"]: m["role"] for m in members["items"]} == {
        world.ids["victim_owner"]: "owner",
        world.ids["victim_member"]: "admin",
    }
    pending = (
        await client.get(f"/api/v1/organizations/{org_id}/invitations", headers=owner)
    ).json()
    assert [i["id"] for i in pending["items"]] == [world.ids["victim_invitation"]]
    keys = await client.get("/api/v1/api-keys", headers=owner | {"Saassy-Organization": org_id})
    assert [(k["id"], k["revoked_at"], k["rotated_at"]) for k in keys.json()["items"]] == [
        (world.ids["victim_key"], None, None)
    ]
    works = await client.get("/api/v1/organizations", headers=bearer(world.victim_key["key"]))
    assert works.status_code == 200
    tasks = await client.get(TASKS, headers=owner | {"Saassy-Organization": org_id})
    assert [(t["id"], t["status"]) for t in tasks.json()["items"]] == [
        (world.ids["victim_task"], "queued")
    ]
    endpoints = (await client.get(WEBHOOKS, headers=owner)).json()["items"]
    assert [
        (e["id"], e["url"], e["enabled"], e["previous_secret_expires_at"]) for e in endpoints
    ] == [(world.ids["victim_endpoint"], "https://hooks.victim.example/payroll", True, None)]
    message = await client.get(
        f"{WEBHOOKS}/{world.ids['victim_endpoint']}/messages/{world.ids['victim_message']}",
        headers=owner,
    )
    assert (message.json()["status"], message.json()["next_attempt_at"]) == (
        "pending",
        world.message_due,
    )
    for organization_id, name, updated_at in world.vault:
        listed = await client.get(SECRETS, headers=owner | {"Saassy-Organization": organization_id})
        assert [(s["name"], s["updated_at"]) for s in listed.json()["items"]] == [
            (name, updated_at)
        ]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_another_tenant_gets_404_and_nothing_else(
    client: httpx.AsyncClient, world: World, case: Case
) -> None:
    for credential in CREDENTIALS:  # one world for both: signing up is the slow part
        response = await client.request(
            case.method,
            url_of(case, world),
            json=case.body,
            headers=world.attacker_headers[credential],
        )
        if case.users_only and credential == "api_key":
            assert response.status_code == 403, response.text
            assert response.json()["error"]["code"] == "user_required"
        else:
            assert_not_found_and_silent(response, world, credential)
        await assert_victim_untouched(client, world)


@pytest.mark.parametrize("case", HEADER_CASES, ids=lambda case: case.name)
async def test_naming_another_tenant_in_the_organization_header_is_404(
    client: httpx.AsyncClient, world: World, case: Case
) -> None:
    for credential in CREDENTIALS:
        headers = world.attacker_headers[credential] | {
            "Saassy-Organization": world.ids["victim_org"]
        }
        response = await client.request(
            case.method, url_of(case, world), json=case.body, headers=headers
        )
        assert_not_found_and_silent(response, world, credential)
        await assert_victim_untouched(client, world)


async def test_the_victim_fixture_is_reachable_by_its_own_credentials(
    client: httpx.AsyncClient, world: World
) -> None:
    """Guards the matrix: the same requests made by the victim do not answer 404."""
    for case in CASES:
        if case.method == "GET" and "own_org" not in case.ids.values():
            response = await client.get(url_of(case, world), headers=world.victim.headers)
            assert response.status_code == 200, (case.name, response.text)


def test_every_id_bearing_route_is_in_the_matrix(app: FastAPI) -> None:
    # Through included routers too: `app.routes` lists a router included whole as one entry.
    declared = {
        (method, str(context.path_format))
        for context in iter_route_contexts(app.routes)
        if isinstance(route := context.original_route, APIRoute)
        and "{" in str(context.path_format)
        and str(context.path_format).startswith(COVERED_PREFIXES)
        for method in route.methods or ()
    }
    assert declared, "no route found: the walk over the app's routes is broken"
    covered = {(case.method, case.route) for case in CASES + HEADER_CASES} | NOT_YET_COVERED
    assert declared - covered == set(), "add these endpoints to CASES"
