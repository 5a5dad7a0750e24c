"""A user owns at most SAASSY_ORGANIZATIONS_PER_USER organizations besides their personal one:
one more is a 409 with its code in the API and above the dashboard's form, exact under races."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from saassy.config import Settings
from saassy.context import AppContext
from saassy.organizations.errors import TooManyOrganizations
from saassy.organizations.service import create_organization as create_in_service
from tests.concurrency import admitted, race
from tests.conftest import SignUp
from tests.organizations.support import create_organization
from tests.quotas.conftest import make_staff
from tests.web.support import browser_for, sign_up, submit

LIMIT = 2
ORGS = "/api/v1/organizations"


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(organizations_per_user=LIMIT)


def test_the_default_is_ten(settings_factory: Callable[..., Settings]) -> None:
    assert settings_factory().organizations_per_user == 10


async def test_one_more_than_the_limit_is_refused_and_deleting_makes_room(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()  # her personal organization does not count
    first = await create_organization(client, ada, "One")
    await create_organization(client, ada, "Two")
    refused = await client.post(ORGS, json={"name": "Three"}, headers=ada.headers)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert (error["code"], error["details"]) == ("organization_limit_reached", {"limit": LIMIT})
    assert "You own 2 organizations" in error["message"]
    assert len((await client.get(ORGS, headers=ada.headers)).json()["items"]) == 3

    # Another user's count is their own; staff meet the same limit.
    bob = await signup()
    await make_staff(ctx, uuid.UUID(bob.user_id))
    await create_organization(client, bob, "B1")
    await create_organization(client, bob, "B2")
    assert (await client.post(ORGS, json={"name": "B3"}, headers=bob.headers)).status_code == 409

    deleted = await client.delete(f"{ORGS}/{first['id']}", headers=ada.headers)
    assert deleted.status_code == 204
    await create_organization(client, ada, "Three")


async def test_creations_at_once_stop_at_the_limit(ctx: AppContext, signup: SignUp) -> None:
    ada = await signup()
    numbers = itertools.count()
    outcomes = await race(
        ctx,
        lambda session: create_in_service(
            session, ctx.settings, uuid.UUID(ada.user_id), f"Org {next(numbers)}"
        ),
        10,
    )
    assert admitted(outcomes, TooManyOrganizations) == LIMIT


async def test_the_dashboard_says_why_above_the_form(app: FastAPI) -> None:
    async with browser_for(app) as browser:
        await sign_up(browser)
        page = "/app/organization/new"
        for name in ("One", "Two"):
            created = await submit(browser, page, {"name": name}, page=page)
            assert created.status_code == 303, created.text
        refused = await submit(browser, page, {"name": "Three"}, page=page)
    assert refused.status_code == 409
    assert '<p class="flash error" role="alert">You own 2 organizations' in refused.text
    assert 'value="Three"' in refused.text
