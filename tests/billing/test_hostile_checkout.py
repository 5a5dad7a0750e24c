"""Checkout and the portal flooded by one tenant: each opens objects and spends calls at
Stripe, whose rate limit every organization on the server shares, so an organization may open
only so many (API and dashboard together); past that it gets 429, and Stripe sees nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from saassy.config import Settings
from saassy.context import AppContext
from tests.billing.billing_app import billing_settings, synced  # noqa: F401 - a fixture
from tests.billing.stripe_services import StripeServices
from tests.conftest import SignUp
from tests.organizations.support import create_organization
from tests.web.billing_support import flash_of
from tests.web.support import submit
from tests.web.team import dashboard

CHECKOUT = "/api/v1/billing/checkout"


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], tmp_path: Path, stripe_services: StripeServices
) -> Settings:
    return billing_settings(
        settings_factory, tmp_path, stripe_services,
        billing_session_limit="3/hour",
    )  # fmt: skip


def checkout_sessions(stripe_services: StripeServices) -> int:
    return len(stripe_services.client().v1.checkout.sessions.list({"limit": 100}).data)


@pytest.mark.usefixtures("synced")
async def test_an_organization_opens_only_so_many_stripe_sessions(
    app: FastAPI, ctx: AppContext, client: httpx.AsyncClient, signup: SignUp,
    stripe_services: StripeServices,
) -> None:  # fmt: skip
    owner = await signup()
    neighbour = await signup()
    for _ in range(2):
        opened = await client.post(CHECKOUT, json={"plan": "pro"}, headers=owner.headers)
        assert opened.status_code == 200, opened.text
    async with dashboard(app, owner) as browser:
        third = await submit(browser, "/app/billing/checkout", {"plan": "pro"}, page="/pricing")
        assert third.status_code == 303
        assert third.headers["location"].startswith(stripe_services.api_base)
        fourth = await submit(browser, "/app/billing/checkout", {"plan": "pro"}, page="/pricing")
        assert fourth.status_code == 303
        assert fourth.headers["location"] == "/app/billing"
        kind, message = flash_of((await browser.get("/app/billing")).text) or ("", "")
        assert kind == "error"
        assert message.startswith(
            "Too many checkout and billing portal sessions for this organization. Retry in "
        )
        portal = await submit(browser, "/app/billing/portal", page="/app/billing")
        assert portal.headers["location"] == "/app/billing"
    for refused in (
        await client.post(CHECKOUT, json={"plan": "pro"}, headers=owner.headers),
        await client.post("/api/v1/billing/portal", headers=owner.headers),
    ):
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "rate_limited"
        assert int(refused.headers["Retry-After"]) > 0
    assert checkout_sessions(stripe_services) == 3
    # Another organization's limit is its own.
    theirs = await client.post(CHECKOUT, json={"plan": "pro"}, headers=neighbour.headers)
    assert theirs.status_code == 200, theirs.text
    assert checkout_sessions(stripe_services) == 4


@pytest.mark.usefixtures("synced")
async def test_a_user_cannot_escape_the_limit_by_making_organizations(
    client: httpx.AsyncClient, signup: SignUp, stripe_services: StripeServices
) -> None:
    owner = await signup()
    answers = []
    for number in range(4):
        team = await create_organization(client, owner, f"Team {number}")
        headers = {**owner.headers, "Saassy-Organization": team["id"]}
        answers.append(await client.post(CHECKOUT, json={"plan": "pro"}, headers=headers))
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert (
        answers[-1]
        .json()["error"]["message"]
        .startswith("Too many checkout and billing portal sessions. Retry in ")
    )
    assert checkout_sessions(stripe_services) == 3
