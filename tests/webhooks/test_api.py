"""Endpoints through the API: secrets shown once and sealed, URLs checked, tenants apart."""

from __future__ import annotations

import re
import uuid
from ipaddress import ip_address

import httpx
import pytest

from saassy.context import AppContext
from saassy.models import WebhookEndpoint
from saassy.webhooks.destination import refusal
from tests.audit.support import entries
from tests.conftest import SignUp
from tests.organizations.support import add_member, bearer, create_api_key, create_organization
from tests.webhooks.support import ENDPOINTS, create_endpoint

SECRET_FORMAT = re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$")


async def test_the_secret_is_shown_once_and_sealed_at_rest(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    created = await create_endpoint(
        client,
        ada,
        "https://hooks.example.com/saassy?token=abc",
        event_types=["task.failed", "task.succeeded"],
        description="Orders service",
    )
    assert SECRET_FORMAT.match(created["secret"]), created["secret"]
    assert created["event_types"] == ["task.failed", "task.succeeded"]
    assert created["enabled"] is True
    assert created["description"] == "Orders service"
    blank = await create_endpoint(client, ada, "https://hooks.example.com/b", description="  ")
    assert blank["description"] == ""

    listed = await client.get(ENDPOINTS, headers=ada.headers)
    assert listed.status_code == 200
    item, _ = listed.json()["items"]
    assert item["id"] == created["id"]
    assert "secret" not in item
    assert created["secret"] not in listed.text
    async with ctx.sessionmaker() as session:
        stored = await session.get(WebhookEndpoint, uuid.UUID(created["id"]))
    assert stored is not None
    assert created["secret"] not in stored.secret
    assert created["secret"][6:] not in stored.secret

    entry, _ = await entries(ctx, "webhook_endpoint.created")
    assert entry.details == {"host": "hooks.example.com"}  # not the URL's token
    assert str(entry.target_id) == created["id"]


async def test_an_unknown_event_type_or_field_is_refused(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    for body in (
        {"url": "https://hooks.example.com/", "event_types": ["task.exploded"]},
        {"url": "https://hooks.example.com/", "secret": "whsec_mine"},
    ):
        response = await client.post(ENDPOINTS, json=body, headers=ada.headers)
        assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9000/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[::ffff:10.0.0.1]/hook", "private"),
        ("https://169.254.169.254/latest", "metadata"),
        ("http://192.168.1.20/hook", "private"),
        # Forms the resolver reads as an address as much as the dotted quad.
        ("http://2130706433/hook", "loopback"),
        ("http://0x7f.1/hook", "loopback"),
        ("http://127.1/hook", "loopback"),
        ("http://0177.0.0.1/hook", "loopback"),
        ("http://127.0.0.1./hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://10.1/hook", "private"),
        ("ftp://hooks.example.com/", "https://"),
        ("https://user:pass@hooks.example.com/", "user name"),
        ("hooks.example.com/hook", "https://"),
    ],
)
async def test_urls_that_may_not_receive_webhooks_are_refused(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    why: str,
) -> None:
    monkeypatch.setattr(ctx.settings, "webhooks_allow_private", False)
    ada = await signup()
    response = await client.post(ENDPOINTS, json={"url": url}, headers=ada.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "webhook_url_refused"
    assert why in error["message"]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[::ffff:169.254.169.254]/latest", "metadata"),
        ("http://[fd00:ec2::254]/latest", "metadata"),
        ("http://169.254.170.2/v2/credentials", "metadata"),
        ("http://169.254.1.1/hook", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://0.0.0.0:9000/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
    ],
)
async def test_metadata_and_link_local_addresses_are_refused_even_when_private_ones_are_allowed(
    client: httpx.AsyncClient, signup: SignUp, url: str, why: str
) -> None:
    ada = await signup()  # this module's settings allow private addresses
    response = await client.post(ENDPOINTS, json={"url": url}, headers=ada.headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "webhook_url_refused"
    assert why in response.json()["error"]["message"]


def test_a_name_resolving_to_a_metadata_address_is_refused_at_delivery_even_when_allowed() -> None:
    for address in ("169.254.169.254", "fe80::1", "::ffff:169.254.169.254"):
        assert refusal(ip_address(address), allow_private=True) is not None, address
    assert refusal(ip_address("10.0.0.1"), allow_private=True) is None
    assert refusal(ip_address("10.0.0.1"), allow_private=False) is not None


async def test_a_loopback_url_is_accepted_when_the_operator_allows_private_addresses(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()  # this module's settings allow private addresses
    created = await create_endpoint(client, ada, "http://127.0.0.1:9000/hook")
    assert created["url"] == "http://127.0.0.1:9000/hook"


async def test_another_organizations_endpoint_is_not_found(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada, bob = await signup(), await signup()
    theirs = await create_endpoint(client, bob, "https://bob.example.com/hook")
    path = f"{ENDPOINTS}/{theirs['id']}"
    message = f"{path}/messages/{uuid.uuid4()}"
    for method, url, body in (
        ("GET", path, None),
        ("PATCH", path, {"enabled": False}),
        ("DELETE", path, None),
        ("POST", f"{path}/rotate-secret", None),
        ("GET", f"{path}/messages", None),
        ("GET", message, None),
        ("POST", f"{message}/redeliver", None),
    ):
        response = await client.request(method, url, json=body, headers=ada.headers)
        assert response.status_code == 404, (method, url, response.text)
    still = await client.get(path, headers=bob.headers)
    assert still.status_code == 200
    assert still.json()["enabled"] is True
    assert (await client.get(ENDPOINTS, headers=ada.headers)).json()["items"] == []


async def test_members_may_not_manage_endpoints(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner)
    member = await add_member(client, ctx, signup, owner, team["id"], role="member")
    admin = await add_member(client, ctx, signup, owner, team["id"], role="admin")
    in_team = {"Saassy-Organization": team["id"]}
    refused = await client.post(
        ENDPOINTS, json={"url": "https://x.example.com/"}, headers=member.headers | in_team
    )
    assert refused.status_code == 403
    assert (await client.get(ENDPOINTS, headers=member.headers | in_team)).status_code == 403
    allowed = await client.post(
        ENDPOINTS, json={"url": "https://x.example.com/"}, headers=admin.headers | in_team
    )
    assert allowed.status_code == 201, allowed.text


async def test_an_api_key_is_told_to_log_in_rather_than_to_get_a_role(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    mine = await create_endpoint(client, owner, "https://owner.example.com/hook")
    key = await create_api_key(client, owner)  # admin scope: still not a person
    assert key["scopes"] == ["admin"]
    path = f"{ENDPOINTS}/{mine['id']}"
    for method, url, body in (
        ("GET", ENDPOINTS, None),
        ("POST", ENDPOINTS, {"url": "https://key.example.com/hook"}),
        ("GET", path, None),
        ("PATCH", path, {"enabled": False}),
        ("DELETE", path, None),
        ("POST", f"{path}/test", None),
        ("GET", f"{path}/messages", None),
        ("GET", f"{ENDPOINTS}/{uuid.uuid4()}", None),
    ):
        response = await client.request(method, url, json=body, headers=bearer(key["key"]))
        assert response.status_code == 403, (method, url, response.text)
        error = response.json()["error"]
        assert error["code"] == "user_required", (method, url, error)
        assert "log in with your e-mail" in error["message"]
        assert "owner or admin" in error["message"]
    still = await client.get(path, headers=owner.headers)
    assert still.json()["enabled"] is True


async def test_update_rotate_and_delete_are_audited(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    created = await create_endpoint(client, ada, "https://hooks.example.com/a")
    path = f"{ENDPOINTS}/{created['id']}"

    changed = await client.patch(
        path, json={"event_types": ["task.canceled"], "enabled": False}, headers=ada.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["event_types"] == ["task.canceled"]
    assert changed.json()["enabled"] is False
    unchanged = await client.patch(path, json={"enabled": False}, headers=ada.headers)
    assert unchanged.status_code == 200

    rotated = await client.post(f"{path}/rotate-secret", headers=ada.headers)
    assert rotated.status_code == 200, rotated.text
    assert SECRET_FORMAT.match(rotated.json()["secret"])
    assert rotated.json()["secret"] != created["secret"]
    assert (await client.get(path, headers=ada.headers)).json()[
        "previous_secret_expires_at"
    ] == rotated.json()["previous_secret_expires_at"]

    assert (await client.delete(path, headers=ada.headers)).status_code == 204
    assert (await client.get(path, headers=ada.headers)).status_code == 404

    actions = [entry.action for entry in await entries(ctx) if entry.action.startswith("webhook")]
    assert actions == [
        "webhook_endpoint.created",
        "webhook_endpoint.updated",
        "webhook_endpoint.secret_rotated",
        "webhook_endpoint.deleted",
    ]
    [updated] = await entries(ctx, "webhook_endpoint.updated")
    assert updated.details["changed"] == ["event_types", "enabled"]
