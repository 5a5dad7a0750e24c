"""Data exports on the dashboard: "Download your data" on the account page, the organization
export for owners, and the e-mailed link, which downloads only for the signed-in requester."""

from __future__ import annotations

import json
import uuid

import httpx
from fastapi import FastAPI

from saassy.context import AppContext
from saassy.models import Membership, Role
from tests.conftest import Account, SignUp
from tests.email.mail import outbox
from tests.privacy.support import Archive, build_exports
from tests.web.support import submit
from tests.web.team import dashboard, flash_after


def download_link(body: str) -> str:
    start = body.index("/app/account/exports/")
    return body[start:].split()[0]


async def test_a_user_requests_their_data_and_downloads_it_from_the_mailed_link(
    app: FastAPI, ctx: AppContext, signup: SignUp
) -> None:
    alice = await signup()
    async with dashboard(app, alice) as browser:
        page = await browser.get("/app/account")
        assert "Download your data" in page.text
        requested = await submit(browser, "/app/account/export", page="/app/account")
        kind, message = await flash_after(browser, requested)
        assert kind == "success"
        assert "e-mail you a download link" in message
        again = await submit(browser, "/app/account/export", page="/app/account")
        kind, message = await flash_after(browser, again)
        assert kind == "error"
        assert "still being prepared" in message

        await build_exports(ctx)
        [mail] = [m for m in await outbox(ctx, alice.email) if "export" in m.subject]
        link = download_link(mail.body)
        page = await browser.get("/app/account")
        assert f'href="{link}"' in page.text
        assert "✓</span>ready" in page.text
        download = await browser.get(link)
        assert download.status_code == 200
        assert download.headers["content-disposition"].startswith("attachment;")
        manifest = Archive.of(download.content).manifest
        assert manifest["kind"] == "account"
        assert manifest["requested_by"]["email"] == alice.email

    bob = await signup()
    async with dashboard(app, bob) as other:
        refused = await other.get(link)
        assert refused.status_code == 404  # someone else's export: as if it did not exist
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://saassy.test"
    ) as stranger:
        anonymous = await stranger.get(link)
        assert anonymous.status_code in (302, 303)
        assert anonymous.headers["location"].startswith("/login")


async def test_only_owners_see_and_request_the_organization_export(
    app: FastAPI, ctx: AppContext, signup: SignUp, client: httpx.AsyncClient
) -> None:
    owner = await signup()
    made = await client.post(
        "/api/v1/organizations", json={"name": "Export team"}, headers=owner.headers
    )
    team = made.json()["id"]
    member: Account = await signup()
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            Membership(
                organization_id=uuid.UUID(team),
                user_id=uuid.UUID(member.user_id),
                role=Role.member,
            )
        )

    async with dashboard(app, member, team) as browser:
        page = await browser.get("/app/organization")
        assert "Download the organization" not in page.text
        refused = await submit(browser, "/app/organization/export", page="/app/organization")
        kind, message = await flash_after(browser, refused)
        assert kind == "error"
        assert "Only an owner" in message

    async with dashboard(app, owner, team) as browser:
        page = await browser.get("/app/organization")
        assert "Download the organization" in page.text
        requested = await submit(browser, "/app/organization/export", page="/app/organization")
        assert (await flash_after(browser, requested))[0] == "success"
        await build_exports(ctx)
        page = await browser.get("/app/organization")
        [link] = {
            part.split('"')[0]
            for part in page.text.split('href="')[1:]
            if part.startswith("/app/account/exports/")
        }
        archive = Archive.of((await browser.get(link)).content)
        assert archive.manifest["organization_ids"] == [team]
        users = json.loads(archive.entries["tables/users.json"])
        assert {user["email"] for user in users} == {owner.email, member.email}
