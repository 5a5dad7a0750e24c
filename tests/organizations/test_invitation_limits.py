"""Invitation e-mails are rate limited per invited address (across organizations) and per
organization, on the API and in the dashboard alike, so nobody can use invitations to flood an
inbox with mail whose organization name they chose."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from saassy.app import create_app
from saassy.config import Settings
from saassy.context import AppContext
from tests.conftest import Account, SignUp
from tests.email.mail import outbox
from tests.organizations.support import create_organization
from tests.web.support import browser_for, sign_up, submit

TARGET = "target@example.com"
MEMBERS = "/app/organization/members"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(
        invitation_limit_per_email="2/hour",
        invitation_limit_per_email_daily="3/day",
        invitation_limit_per_organization="4/day",
    )


async def _invite(
    client: httpx.AsyncClient, account: Account, organization_id: str, email: str
) -> httpx.Response:
    return await client.post(
        f"/api/v1/organizations/{organization_id}/invitations",
        json={"email": email, "role": "member"},
        headers=account.headers,
    )


async def _invitations_to(ctx: AppContext, address: str) -> int:
    return len([mail for mail in await outbox(ctx, address) if mail.subject.startswith("Join ")])


async def test_an_address_gets_a_few_invitations_an_hour_from_all_organizations_together(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    assert (await _invite(client, owner, owner.organization_id, TARGET)).status_code == 201
    # Inviting again (the API's way to send again) counts too.
    assert (await _invite(client, owner, owner.organization_id, TARGET)).status_code == 201

    refused = await _invite(client, owner, owner.organization_id, TARGET.upper())
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "Too many invitations were sent to this address" in refused.json()["error"]["message"]
    assert int(refused.headers["Retry-After"]) > 0
    # Another organization (of another owner) cannot add to it either.
    other = await signup()
    elsewhere = await _invite(client, other, other.organization_id, TARGET)
    assert elsewhere.status_code == 429
    assert await _invitations_to(ctx, TARGET) == 2
    # Other addresses are not affected, and the refused attempt changed nothing.
    assert (
        await _invite(client, owner, owner.organization_id, "else@example.com")
    ).status_code == 201
    listed = await client.get(
        f"/api/v1/organizations/{owner.organization_id}/invitations", headers=owner.headers
    )
    assert [item["email"] for item in listed.json()["items"]].count(TARGET) == 1


async def test_an_address_gets_a_few_invitations_a_day(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(
        invitation_limit_per_email="10/hour", invitation_limit_per_email_daily="3/day"
    )
    app = create_app(settings, background=False)
    async with app.router.lifespan_context(app), browser_for(app) as browser:
        await sign_up(browser)
        statuses = [
            (
                await submit(
                    browser, "/app/organization/invitations", {"email": TARGET}, page=MEMBERS
                )
            ).status_code
            for _ in range(4)
        ]
        assert statuses == [303, 303, 303, 429]
        assert await _invitations_to(app.state.ctx, TARGET) == 3


async def test_an_organization_sends_a_bounded_number_a_day(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    for number in range(4):
        response = await _invite(client, owner, owner.organization_id, f"p{number}@example.com")
        assert response.status_code == 201, response.text
    refused = await _invite(client, owner, owner.organization_id, "p4@example.com")
    assert refused.status_code == 429
    assert "This organization has sent too many invitations" in refused.json()["error"]["message"]
    assert await _invitations_to(ctx, "p4@example.com") == 0
    # A refusal by the organization's limit does not use up the address's budget...
    team = await create_organization(client, owner, "Another team")
    for _ in range(2):
        assert (await _invite(client, owner, team["id"], "p4@example.com")).status_code == 201


async def test_sending_again_from_the_dashboard_is_limited_too(
    app: FastAPI, ctx: AppContext
) -> None:
    async with browser_for(app) as browser:
        await sign_up(browser)
        sent = await submit(
            browser, "/app/organization/invitations", {"email": TARGET}, page=MEMBERS
        )
        assert sent.status_code == 303
        page = await browser.get(MEMBERS)
        found = re.search(r"/app/organization/invitations/([0-9a-f-]+)/resend", page.text)
        assert found is not None
        resend = f"/app/organization/invitations/{found.group(1)}/resend"
        assert (await submit(browser, resend, page=MEMBERS)).status_code == 303

        page = await browser.get(MEMBERS)
        found = re.search(r"/app/organization/invitations/([0-9a-f-]+)/resend", page.text)
        assert found is not None
        refused = await submit(
            browser, f"/app/organization/invitations/{found.group(1)}/resend", page=MEMBERS
        )
        assert refused.status_code == 429
        assert "Too many invitations were sent to this address" in refused.text
        assert int(refused.headers["Retry-After"]) > 0
        # The link sent last still works: the refused resend replaced nothing.
        assert found.group(1) in (await browser.get(MEMBERS)).text
    assert await _invitations_to(ctx, TARGET) == 2


def test_a_limit_that_is_not_one_stops_start_up(
    settings_factory: Callable[..., Settings],
) -> None:
    with pytest.raises(ValidationError, match="is not a rate limit"):
        settings_factory(invitation_limit_per_organization="fifty a day")
