"""The secret pages: names and times for every member, values written by admins and owners and
never shown again, not on any page, form or log."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from saassy.config import Settings
from saassy.context import AppContext
from saassy.vault.service import open_secrets
from tests.conftest import SignUp
from tests.organizations.support import add_member, create_organization
from tests.vault.support import put_secret
from tests.web.support import browser_for, sign_up, submit
from tests.web.team import PAYLOADS, assert_inert, dashboard, flash_after

PAGE = "/app/secrets"
NEW = "/app/secrets/new"
CANARY = "canary-51d2c0-value-that-must-never-come-back"

CATALOG = """
default_plan = "free"

[plans.free]
name = "Free"
tasks_per_month = 100
api_rate_limit = "1000/minute"

[task_types.mailer]
title = "Mailer"
command = ["/bin/true"]
secrets = ["SMTP_PASSWORD", "API_TOKEN"]

[task_types.heavy]
title = "Heavy"
command = ["/bin/true"]
secrets = ["API_TOKEN"]
"""


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    path = tmp_path / "saassy.toml"
    path.write_text(CATALOG, encoding="utf-8")
    return settings_factory(config=path)


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as client:
        yield client


async def personal_organization(browser: httpx.AsyncClient) -> str:
    """The id of the organization the browser works in (its personal one after sign-up)."""
    page = await browser.get("/app/organization")
    marker = "Saassy-Organization: "
    start = page.text.index(marker) + len(marker)
    return page.text[start : start + 36]


async def value_of(ctx: AppContext, organization_id: str, name: str) -> str:
    async with ctx.sessionmaker() as session:
        opened = await open_secrets(
            session, ctx.settings.vault_keyring, uuid.UUID(organization_id), [name]
        )
    return opened[name]


async def test_store_replace_and_delete_a_secret(
    browser: httpx.AsyncClient,
    client: httpx.AsyncClient,
    ctx: AppContext,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await sign_up(browser)
    organization_id = await personal_organization(browser)
    responses: list[httpx.Response] = []

    empty = await browser.get(PAGE)
    assert "No secrets yet." in empty.text
    assert "curl -X PUT" in empty.text
    # The catalog's needs, with a way to add each.
    assert "SMTP_PASSWORD" in empty.text
    assert f"{NEW}?name=API_TOKEN" in empty.text
    form = await browser.get(NEW, params={"name": "API_TOKEN"})
    assert 'value="API_TOKEN"' in form.text
    assert "<code>heavy</code>, <code>mailer</code>" in form.text

    stored = await submit(browser, PAGE, {"name": "API_TOKEN", "value": CANARY}, page=NEW)
    responses.append(stored)
    assert await flash_after(browser, stored) == ("success", "Secret stored.")
    assert await value_of(ctx, organization_id, "API_TOKEN") == CANARY

    listed = await browser.get(PAGE)
    responses.append(listed)
    assert 'href="/app/secrets/API_TOKEN"' in listed.text
    assert "<code>heavy</code>, <code>mailer</code>" in listed.text
    assert "SMTP_PASSWORD" in listed.text  # still missing

    again = await submit(browser, PAGE, {"name": "API_TOKEN", "value": CANARY + "!"}, page=NEW)
    responses.append(again)
    assert again.status_code == 409
    assert "open it to replace its value" in again.text
    assert await value_of(ctx, organization_id, "API_TOKEN") == CANARY

    detail = await browser.get(f"{PAGE}/API_TOKEN")
    responses.append(detail)
    assert detail.status_code == 200
    assert "Replace the value" in detail.text
    replaced = await submit(
        browser, f"{PAGE}/API_TOKEN", {"value": CANARY + "-2"}, page=f"{PAGE}/API_TOKEN"
    )
    responses.append(replaced)
    assert await flash_after(browser, replaced) == ("success", "Secret replaced.")
    assert await value_of(ctx, organization_id, "API_TOKEN") == CANARY + "-2"

    empty_value = await submit(
        browser, f"{PAGE}/API_TOKEN", {"value": ""}, page=f"{PAGE}/API_TOKEN"
    )
    assert empty_value.status_code == 422
    assert "The value must not be empty." in empty_value.text

    deleted = await submit(browser, f"{PAGE}/API_TOKEN/delete", page=f"{PAGE}/API_TOKEN")
    responses.append(deleted)
    assert await flash_after(browser, deleted) == ("success", "Secret deleted.")
    assert (await browser.get(f"{PAGE}/API_TOKEN")).status_code == 404

    for path in (PAGE, NEW, "/app", "/app/organization"):
        responses.append(await browser.get(path))
    for response in responses:
        assert CANARY not in response.text
        assert all(CANARY not in value for value in response.headers.values())
    out, err = capfd.readouterr()
    assert CANARY not in out + err + caplog.text


async def test_a_refused_value_is_never_put_back_in_the_form(browser: httpx.AsyncClient) -> None:
    await sign_up(browser)
    bad_name = await submit(browser, PAGE, {"name": "2fast", "value": CANARY}, page=NEW)
    assert bad_name.status_code == 422
    assert 'id="f-name-error"' in bad_name.text
    assert "Not a valid name" in bad_name.text
    assert 'value="2fast"' in bad_name.text  # the name is kept
    assert CANARY not in bad_name.text  # the value is not
    assert "the value was not kept" in bad_name.text
    too_big = await submit(browser, PAGE, {"name": "BIG", "value": CANARY * 2000}, page=NEW)
    assert too_big.status_code == 422
    assert 'id="f-value-error"' in too_big.text
    assert CANARY not in too_big.text
    nul = await submit(browser, PAGE, {"name": "NUL", "value": CANARY + "\x00"}, page=NEW)
    assert nul.status_code == 422
    assert CANARY not in nul.text
    assert "No secrets yet." in (await browser.get(PAGE)).text


async def test_members_read_names_admins_write(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Team")
    await put_secret(client, owner.headers, "SMTP_PASSWORD", CANARY, team["id"])
    member = await add_member(client, ctx, signup, owner, team["id"], "member")
    admin = await add_member(client, ctx, signup, owner, team["id"], "admin")
    async with dashboard(app, member, team["id"]) as browser:
        page = await browser.get(PAGE)
        assert page.status_code == 200
        assert "SMTP_PASSWORD" in page.text
        assert f'href="{NEW}"' not in page.text
        detail = await browser.get(f"{PAGE}/SMTP_PASSWORD")
        assert detail.status_code == 200
        assert "Replace the value" not in detail.text
        assert (await browser.get(NEW)).status_code == 403
        created = await submit(browser, PAGE, {"name": "MINE", "value": "x"}, page=PAGE)
        assert created.status_code == 403
        replaced = await submit(browser, f"{PAGE}/SMTP_PASSWORD", {"value": "x"}, page=PAGE)
        assert replaced.status_code == 403
        assert "admin role or higher" in replaced.text
        deleted = await submit(browser, f"{PAGE}/SMTP_PASSWORD/delete", page=PAGE)
        assert deleted.status_code == 403
    assert await value_of(ctx, team["id"], "SMTP_PASSWORD") == CANARY
    async with dashboard(app, admin, team["id"]) as browser:
        stored = await submit(browser, PAGE, {"name": "MINE", "value": "admin's"}, page=NEW)
        assert stored.status_code == 303
    assert await value_of(ctx, team["id"], "MINE") == "admin's"


async def test_another_tenants_secret_is_404(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    victim = await signup()
    await put_secret(client, victim.headers, "VICTIM_ONLY", CANARY)
    attacker = await signup()
    async with dashboard(app, attacker) as browser:
        assert (await browser.get(f"{PAGE}/VICTIM_ONLY")).status_code == 404
        assert (await browser.get(f"{PAGE}/not-a-name")).status_code == 404
        replaced = await submit(browser, f"{PAGE}/VICTIM_ONLY", {"value": "x"}, page=PAGE)
        assert replaced.status_code == 404
        deleted = await submit(browser, f"{PAGE}/VICTIM_ONLY/delete", page=PAGE)
        assert deleted.status_code == 404
        assert "VICTIM_ONLY" not in (await browser.get(PAGE)).text
    assert await value_of(ctx, victim.organization_id, "VICTIM_ONLY") == CANARY


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_names_typed_render_inert(browser: httpx.AsyncClient, payload: str) -> None:
    # A secret's name cannot hold markup, but what was typed comes back in the form.
    await sign_up(browser)
    refused = await submit(browser, PAGE, {"name": payload, "value": "x"}, page=NEW)
    assert refused.status_code == 422
    assert_inert(refused.text, payload)
    shown = await browser.get(NEW, params={"name": payload})
    assert_inert(shown.text, payload)


async def test_forms_without_the_csrf_token_change_nothing(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    await put_secret(client, owner.headers, "KEEP", CANARY)
    async with dashboard(app, owner) as browser:
        for action, data in (
            (PAGE, {"name": "FORGED", "value": "x"}),
            (f"{PAGE}/KEEP", {"value": "forged"}),
            (f"{PAGE}/KEEP/delete", {}),
        ):
            assert (await browser.post(action, data=data)).status_code == 403
            forged = await browser.post(action, data={**data, "csrf_token": "0" * 64})
            assert forged.status_code == 403
        assert "FORGED" not in (await browser.get(PAGE)).text
    assert await value_of(ctx, owner.organization_id, "KEEP") == CANARY
