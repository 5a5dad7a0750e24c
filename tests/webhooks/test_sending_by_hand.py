"""Messages sent by hand: a test event, and redelivery, which waits for the message's pending
attempt, counts against the organization's limit, and is written to the audit log; and the
number of endpoints an organization may have."""

from __future__ import annotations

import httpx
import pytest

from saassy.context import AppContext
from saassy.webhooks.service import MAX_ENDPOINTS
from tests.audit.support import entries
from tests.conftest import SignUp
from tests.webhooks.receiver import Receiver, verify
from tests.webhooks.support import ENDPOINTS, create_endpoint
from tests.webhooks.test_delivery import deliver_until, messages_of


async def test_a_test_event_is_delivered_signed_whatever_types_the_endpoint_takes(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, receiver: Receiver
) -> None:
    ada = await signup()
    endpoint = await create_endpoint(client, ada, receiver.url, event_types=["task.failed"])
    sent = await client.post(f"{ENDPOINTS}/{endpoint['id']}/test", headers=ada.headers)
    assert sent.status_code == 202, sent.text
    assert (sent.json()["event_type"], sent.json()["status"]) == ("webhook.test", "pending")

    await deliver_until(ctx, receiver.succeeded)
    [got] = receiver.requests
    event = verify(endpoint["secret"], got.headers, got.body)
    assert event["type"] == "webhook.test"
    assert event["data"] == {"endpoint_id": endpoint["id"]}
    assert got.headers["webhook-id"] == sent.json()["webhook_id"]
    [message] = await messages_of(client, ada, endpoint["id"])
    assert message["status"] == "delivered"
    [entry] = await entries(ctx, "webhook_endpoint.test_sent")
    assert str(entry.actor_user_id) == ada.user_id
    assert entry.details == {"host": "127.0.0.1", "message_id": message["id"]}


async def test_a_disabled_endpoint_is_not_sent_a_test_event(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    endpoint = await create_endpoint(client, ada, "https://hooks.example.com/", enabled=False)
    refused = await client.post(f"{ENDPOINTS}/{endpoint['id']}/test", headers=ada.headers)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "webhook_endpoint_disabled"


async def test_redelivery_waits_for_the_pending_attempt_is_limited_and_audited(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ctx.settings, "webhook_send_limit", "3/hour")
    ada, bob = await signup(), await signup()
    endpoint = await create_endpoint(client, ada, receiver.url)
    sent = await client.post(f"{ENDPOINTS}/{endpoint['id']}/test", headers=ada.headers)  # 1
    redeliver = f"{ENDPOINTS}/{endpoint['id']}/messages/{sent.json()['id']}/redeliver"

    # Still waiting for its first attempt: a redelivery would only send it twice.
    pending = await client.post(redeliver, headers=ada.headers)
    assert pending.status_code == 409, pending.text
    assert pending.json()["error"]["code"] == "webhook_message_pending"

    for sends in (1, 2, 3):
        await deliver_until(ctx, lambda: len(receiver.succeeded()) >= sends)  # noqa: B023
        if sends < 3:
            again = await client.post(redeliver, headers=ada.headers)  # 2, 3
            assert again.status_code == 202, again.text
    limited = await client.post(redeliver, headers=ada.headers)
    assert limited.status_code == 429, limited.text
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    # The limit is the organization's: another one sends on.
    theirs = await create_endpoint(client, bob, receiver.url)
    assert (
        await client.post(f"{ENDPOINTS}/{theirs['id']}/test", headers=bob.headers)
    ).status_code == 202

    redelivered = await entries(ctx, "webhook_message.redelivered")
    assert len(redelivered) == 2
    for entry in redelivered:
        assert str(entry.actor_user_id) == ada.user_id
        assert str(entry.target_id) == endpoint["id"]
        assert entry.details == {
            "host": "127.0.0.1",
            "message_id": sent.json()["id"],
            "event_type": "webhook.test",
        }
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1


async def test_a_redelivered_message_is_not_delivered_until_it_is_again(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp, receiver: Receiver
) -> None:
    ada = await signup()
    endpoint = await create_endpoint(client, ada, receiver.url)
    sent = await client.post(f"{ENDPOINTS}/{endpoint['id']}/test", headers=ada.headers)
    message_url = f"{ENDPOINTS}/{endpoint['id']}/messages/{sent.json()['id']}"
    await deliver_until(ctx, lambda: len(receiver.succeeded()) >= 1)
    first = (await client.get(message_url, headers=ada.headers)).json()
    assert (first["status"], first["delivered_at"] is not None) == ("delivered", True)

    again = await client.post(f"{message_url}/redeliver", headers=ada.headers)
    assert again.status_code == 202, again.text
    assert (again.json()["status"], again.json()["delivered_at"]) == ("pending", None)
    pending = (await client.get(message_url, headers=ada.headers)).json()
    assert (pending["status"], pending["delivered_at"]) == ("pending", None)

    await deliver_until(ctx, lambda: len(receiver.succeeded()) >= 2)
    second = (await client.get(message_url, headers=ada.headers)).json()
    assert second["status"] == "delivered"
    assert second["delivered_at"] >= first["delivered_at"]


async def test_an_organization_has_at_most_so_many_endpoints(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    for n in range(MAX_ENDPOINTS):
        await create_endpoint(client, ada, f"https://hooks.example.com/{n}")
    refused = await client.post(
        ENDPOINTS, json={"url": "https://hooks.example.com/one-more"}, headers=ada.headers
    )
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["details"]) == ("webhook_endpoint_limit", {"limit": 20})
    listed = await client.get(ENDPOINTS, params={"limit": 100}, headers=ada.headers)
    assert len(listed.json()["items"]) == MAX_ENDPOINTS
    # Deleting one makes room again.
    first = listed.json()["items"][0]["id"]
    assert (await client.delete(f"{ENDPOINTS}/{first}", headers=ada.headers)).status_code == 204
    await create_endpoint(client, ada, "https://hooks.example.com/one-more")
