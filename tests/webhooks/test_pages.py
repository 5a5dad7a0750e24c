"""The webhook pages: an endpoint added with its secret shown once, its delivery log with every
attempt, redelivery, enable/disable and delete; admins and owners only, other tenants 404."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI

from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from tests.conftest import SignUp
from tests.organizations.support import add_member, create_organization
from tests.web.support import submit
from tests.web.team import IMG, assert_inert, dashboard, flash_after
from tests.webhooks.receiver import Receiver, running, verify
from tests.webhooks.support import create_endpoint
from tests.webhooks.test_delivery import deliver_until, run_task

PAGE = "/app/webhooks"
SECRET = re.compile(r'id="new-webhook-secret"[^>]* value="(whsec_[A-Za-z0-9+/=]+)"')


async def test_an_endpoint_added_in_the_dashboard_receives_signed_events(
    app: FastAPI, ctx: AppContext, signup: SignUp, engine: TaskEngine
) -> None:
    ada = await signup()
    async with dashboard(app, ada) as browser:
        empty = await browser.get(PAGE)
        assert empty.status_code == 200
        assert "No webhook endpoints yet." in empty.text
        assert "/api/v1/webhooks/endpoints" in empty.text

        with running(Receiver(failures=1)) as receiver:
            created = await submit(
                browser,
                PAGE,
                {"url": receiver.url, "description": IMG, "event_types": "task.succeeded"},
                page=PAGE,
            )
            assert created.status_code == 201, created.text
            assert created.headers["cache-control"] == "no-store"
            found = SECRET.search(created.text)
            assert found
            secret = found.group(1)
            listed = await browser.get(PAGE)
            assert secret not in listed.text
            assert_inert(listed.text, IMG)
            [endpoint_id] = re.findall(r'href="/app/webhooks/([0-9a-f-]{36})"', listed.text)

            await run_task(ctx, engine, ada)
            await deliver_until(ctx, receiver.succeeded)
            for request in receiver.requests:
                verify(secret, request.headers, request.body)

        log = await browser.get(f"{PAGE}/{endpoint_id}")
        assert log.status_code == 200
        assert "task.succeeded" in log.text
        assert "not today" in log.text  # the failed attempt's answer
        assert "HTTP 500" in log.text
        [message_id] = set(re.findall(r"/messages/([0-9a-f-]{36})/redeliver", log.text))

        again = await submit(
            browser,
            f"{PAGE}/{endpoint_id}/messages/{message_id}/redeliver",
            page=f"{PAGE}/{endpoint_id}",
        )
        assert again.status_code == 303
        assert await flash_after(browser, again) == ("success", "The message will be sent again.")

        off = await submit(
            browser, f"{PAGE}/{endpoint_id}/enabled", {"enabled": "false"}, page=PAGE
        )
        assert off.status_code == 303
        assert "disabled" in (await browser.get(f"{PAGE}/{endpoint_id}")).text

        gone = await submit(browser, f"{PAGE}/{endpoint_id}/delete", page=PAGE)
        assert gone.status_code == 303
        assert (await browser.get(f"{PAGE}/{endpoint_id}")).status_code == 404


async def test_a_private_url_is_refused_beside_the_field(
    app: FastAPI, ctx: AppContext, signup: SignUp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ctx.settings, "webhooks_allow_private", False)
    ada = await signup()
    async with dashboard(app, ada) as browser:
        refused = await submit(browser, PAGE, {"url": "http://10.1.2.3/hook"}, page=PAGE)
    assert refused.status_code == 422
    assert "a private address" in refused.text
    assert 'aria-invalid="true"' in refused.text
    assert "Private and loopback addresses are refused." in refused.text


async def test_the_url_help_says_private_addresses_are_refused_only_when_they_are(
    app: FastAPI, ctx: AppContext, signup: SignUp, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = await signup()
    for allowed in (True, False):
        monkeypatch.setattr(ctx.settings, "webhooks_allow_private", allowed)
        async with dashboard(app, ada) as browser:
            page = await browser.get(PAGE)
        assert page.status_code == 200
        assert "Where events are POSTed" in page.text
        said = "Private and loopback addresses are refused." in page.text
        assert said is not allowed


EVENTS_ERROR = re.compile(r'<p class="error">([^<]+)</p>\s*</fieldset>')


@pytest.mark.parametrize("where", ["new", "edit"])
async def test_a_crafted_event_type_is_refused_with_a_message(
    app: FastAPI, client: httpx.AsyncClient, signup: SignUp, where: str
) -> None:
    ada = await signup()
    endpoint = await create_endpoint(client, ada, "https://ada.example.com/hook")
    action = PAGE if where == "new" else f"{PAGE}/{endpoint['id']}"
    crafted = {"url": "https://ada.example.com/other", "event_types": "task.bogus"}
    async with dashboard(app, ada) as browser:
        refused = await submit(browser, action, crafted, page=action)
    assert refused.status_code == 422
    error = EVENTS_ERROR.search(refused.text)
    assert error, refused.text
    assert "task.succeeded" in error.group(1)  # what it should have been
    after = await client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}", headers=ada.headers)
    assert after.json()["url"] == "https://ada.example.com/hook"


async def test_members_are_refused_and_other_tenants_endpoints_are_not_found(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner, stranger = await signup(), await signup()
    team = await create_organization(client, owner)
    member = await add_member(client, ctx, signup, owner, team["id"])
    theirs = await create_endpoint(client, stranger, "https://stranger.example.com/hook")
    async with dashboard(app, member, team["id"]) as browser:
        assert (await browser.get(PAGE)).status_code == 403
    async with dashboard(app, owner) as browser:
        assert (await browser.get(f"{PAGE}/{theirs['id']}")).status_code == 404
        deleted = await submit(browser, f"{PAGE}/{theirs['id']}/delete", page=PAGE)
        assert deleted.status_code == 404


async def test_an_endpoint_is_edited_and_sent_a_test_event_from_its_page(
    app: FastAPI,
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ada = await signup()
    endpoint = await create_endpoint(client, ada, "https://old.example.com/hook")
    page = f"{PAGE}/{endpoint['id']}"
    async with dashboard(app, ada) as browser:
        shown = await browser.get(page)
        assert 'value="https://old.example.com/hook"' in shown.text
        saved = await submit(
            browser,
            page,
            {"url": receiver.url, "description": "Orders", "event_types": "task.failed"},
            page=page,
        )
        assert saved.status_code == 303, saved.text
        assert await flash_after(browser, saved) == ("success", "Endpoint saved.")
        after = (
            await client.get(f"/api/v1/webhooks/endpoints/{endpoint['id']}", headers=ada.headers)
        ).json()
        assert (after["url"], after["description"], after["event_types"]) == (
            receiver.url,
            "Orders",
            ["task.failed"],
        )

        monkeypatch.setattr(ctx.settings, "webhooks_allow_private", False)
        refused = await submit(browser, page, {"url": "http://0x7f.1/hook"}, page=page)
        assert refused.status_code == 422
        assert "a loopback address" in refused.text
        assert 'aria-invalid="true"' in refused.text
        monkeypatch.setattr(ctx.settings, "webhooks_allow_private", True)

        monkeypatch.setattr(ctx.settings, "webhook_send_limit", "1/hour")
        tested = await submit(browser, f"{page}/test", page=page)
        assert tested.status_code == 303
        assert (await flash_after(browser, tested))[0] == "success"
        await deliver_until(ctx, receiver.succeeded)
        [got] = receiver.requests
        assert verify(endpoint["secret"], got.headers, got.body)["type"] == "webhook.test"
        assert "webhook.test" in (await browser.get(page)).text

        # Over the organization's limit of messages sent by hand: said in a flash.
        limited = await submit(browser, f"{page}/test", page=page)
        assert limited.status_code == 303
        kind, message = await flash_after(browser, limited)
        assert kind == "error"
        assert "Too many webhook messages" in message
