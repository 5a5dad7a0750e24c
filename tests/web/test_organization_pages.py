"""The organization pages: settings, members, invitations (sent, accepted through the link),
creating, leaving and deleting organizations, by the API's role rules."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from saassy.context import AppContext
from saassy.models import Invitation
from tests.conftest import Account, SignUp
from tests.organizations.support import (
    TOKEN_IN_LINK,
    add_member,
    create_organization,
    invite,
    last_email_to,
)
from tests.web.support import PASSWORD, browser_for, csrf_token, sign_up, submit
from tests.web.team import PAYLOADS, assert_inert, dashboard, flash_after

MEMBERS = "/app/organization/members"


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_for(app) as client:
        yield client


async def organization_name(client: httpx.AsyncClient, account: Account, org_id: str) -> int:
    """The API's status for the organization, as `account` sees it."""
    return (
        await client.get(f"/api/v1/organizations/{org_id}", headers=account.headers)
    ).status_code


async def roles_in(client: httpx.AsyncClient, owner: Account, org_id: str) -> dict[str, str]:
    """E-mail -> role of the organization's members, from the API."""
    response = await client.get(f"/api/v1/organizations/{org_id}/members", headers=owner.headers)
    assert response.status_code == 200, response.text
    return {m["email"]: m["role"] for m in response.json()["items"]}


async def invitation_link(ctx: AppContext, email: str) -> str:
    """The path of the newest invitation link e-mailed to `email`."""
    _, body = await last_email_to(ctx, email)
    match = TOKEN_IN_LINK.search(body)
    assert match is not None, body
    return f"/invitations/accept?token={match.group(1)}"


# Settings


async def test_rename_the_organization(browser: httpx.AsyncClient) -> None:
    await sign_up(browser, organization="Acme Robotics")
    page = await browser.get("/app/organization")
    assert page.status_code == 200
    assert 'value="Acme Robotics"' in page.text
    assert "Personal" in page.text  # the sign-up organization is the personal one

    too_long = "x" * 121
    refused = await submit(
        browser, "/app/organization/rename", {"name": too_long}, page="/app/organization"
    )
    assert refused.status_code == 422
    assert 'id="f-name-error"' in refused.text
    assert f'value="{too_long}"' in refused.text  # what was typed is kept

    renamed = await submit(
        browser, "/app/organization/rename", {"name": "  Acme Labs "}, page="/app/organization"
    )
    assert await flash_after(browser, renamed) == ("success", "Organization renamed.")
    page = await browser.get("/app/organization")
    assert 'value="Acme Labs"' in page.text
    assert "Acme Labs" in (await browser.get("/app")).text  # the switcher too


async def test_a_member_cannot_rename(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Team")
    member = await add_member(client, ctx, signup, owner, team["id"])
    async with dashboard(app, member, team["id"]) as browser:
        page = await browser.get("/app/organization")
        assert 'action="/app/organization/rename"' not in page.text
        assert "Admins and owners can rename it." in page.text
        refused = await submit(
            browser, "/app/organization/rename", {"name": "Mine now"}, page="/app/organization"
        )
        assert refused.status_code == 403
        assert "admin role or higher" in refused.text
    got = await client.get(f"/api/v1/organizations/{team['id']}", headers=owner.headers)
    assert got.json()["name"] == "Team"


# Invitations


async def test_an_invited_person_signs_up_and_accepts(
    app: FastAPI, ctx: AppContext, browser: httpx.AsyncClient
) -> None:
    await sign_up(browser, organization="Acme Robotics")
    sent = await submit(
        browser,
        "/app/organization/invitations",
        {"email": "Grace@Example.com", "role": "admin"},
        page=MEMBERS,
    )
    assert await flash_after(browser, sent) == ("success", "Invitation sent.")
    members = await browser.get(MEMBERS)
    assert "grace@example.com" in members.text  # pending, with its expiry
    assert re.search(r"in [67] days", members.text)
    link = await invitation_link(ctx, "grace@example.com")

    async with browser_for(app) as grace:
        shown = await grace.get(link)
        assert shown.status_code == 200
        assert shown.headers["referrer-policy"] == "no-referrer"
        assert shown.headers["cache-control"] == "no-store"
        assert "Acme Robotics" in shown.text
        assert "<strong>admin</strong>" in shown.text
        signup_url = re.search(r'href="(/signup\?next=[^"]+)"', shown.text)
        assert signup_url is not None
        assert re.search(r'href="/login\?next=[^"]+"', shown.text)
        back = parse_qs(urlsplit(signup_url.group(1).replace("&amp;", "&")).query)["next"][0]
        assert back == link

        # Sign up from there: the form carries where to come back to.
        form = await grace.get(signup_url.group(1).replace("&amp;", "&"))
        assert 'name="next"' in form.text
        token = await csrf_token(grace, "/signup")
        signed_up = await grace.post(
            "/signup",
            data={
                "email": "grace@example.com",
                "password": PASSWORD,
                "next": back,
                "csrf_token": token,
            },
        )
        assert signed_up.status_code == 303
        assert signed_up.headers["location"] == link

        offer = await grace.get(link)
        assert offer.status_code == 200
        assert "Accept the invitation" in offer.text
        await grace.get(link)  # showing it twice uses nothing up
        async with ctx.sessionmaker() as session:
            invitation = (await session.scalars(select(Invitation))).one()
            assert invitation.accepted_at is None

        token_value = parse_qs(urlsplit(link).query)["token"][0]
        accepted = await submit(grace, "/invitations/accept", {"token": token_value}, page=link)
        kind, message = await flash_after(grace, accepted)
        assert accepted.headers["location"] == "/app"
        assert (kind, message) == ("success", "You joined the organization as admin; welcome.")
        # The dashboard now works in the organization joined.
        organization = await grace.get("/app/organization")
        assert 'value="Acme Robotics"' in organization.text

        again = await grace.get(link)
        assert again.status_code == 409
        assert "already accepted" in again.text
        assert "Accept the invitation" not in again.text

    members = await browser.get(MEMBERS)
    assert "grace@example.com" in members.text
    assert "No invitations are waiting." in members.text


async def test_log_in_comes_back_to_the_invitation(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Team")
    guest = await signup()
    await invite(client, ctx, owner, team["id"], guest.email)
    link = await invitation_link(ctx, guest.email)
    async with browser_for(app) as browser:
        shown = await browser.get(link)
        assert "Log in" in shown.text
        logged_in = await submit(
            browser, "/login", {"email": guest.email, "password": guest.password, "next": link}
        )
        assert logged_in.headers["location"] == link
        token = parse_qs(urlsplit(link).query)["token"][0]
        accepted = await submit(browser, "/invitations/accept", {"token": token}, page=link)
        assert accepted.status_code == 303
    assert (await roles_in(client, owner, team["id"]))[guest.email] == "member"


async def test_an_invitation_for_another_address_is_refused(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Team")
    await invite(client, ctx, owner, team["id"], "someone@example.com")
    link = await invitation_link(ctx, "someone@example.com")
    stranger = await signup()
    async with dashboard(app, stranger) as browser:
        shown = await browser.get(link)
        assert shown.status_code == 403
        assert "sent to another e-mail address" in shown.text
        assert "Accept the invitation" not in shown.text
        token = parse_qs(urlsplit(link).query)["token"][0]
        refused = await submit(browser, "/invitations/accept", {"token": token}, page=link)
        assert refused.status_code == 403
    assert stranger.email not in await roles_in(client, owner, team["id"])


async def test_unknown_and_revoked_links_say_so(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    unknown = await browser.get("/invitations/accept", params={"token": "no-such-token"})
    assert unknown.status_code == 404
    assert "does not work" in unknown.text
    assert (await browser.get("/invitations/accept")).status_code == 404

    owner = await signup()
    team = await create_organization(client, owner, "Zebra Unit")
    invitation, _ = await invite(client, ctx, owner, team["id"], "late@example.com")
    link = await invitation_link(ctx, "late@example.com")
    await client.delete(
        f"/api/v1/organizations/{team['id']}/invitations/{invitation['id']}",
        headers=owner.headers,
    )
    revoked = await browser.get(link)
    assert revoked.status_code == 400
    assert "This invitation was revoked." in revoked.text
    assert "Zebra Unit" not in revoked.text  # nothing of the organization for a dead link


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:x"]
)
async def test_sign_up_never_redirects_off_site(browser: httpx.AsyncClient, target: str) -> None:
    page = await browser.get("/signup", params={"next": target})
    assert 'name="next" value="/app"' in page.text
    token = await csrf_token(browser, "/signup")
    response = await browser.post(
        "/signup",
        data={
            "email": f"u-{uuid.uuid4().hex[:8]}@example.com",
            "password": PASSWORD,
            "next": target,
            "csrf_token": token,
        },
    )
    assert response.headers["location"] == "/app"


async def test_send_again_and_revoke(
    app: FastAPI, browser: httpx.AsyncClient, ctx: AppContext
) -> None:
    await sign_up(browser)
    await submit(
        browser, "/app/organization/invitations", {"email": "ada@example.com"}, page=MEMBERS
    )
    first = await invitation_link(ctx, "ada@example.com")
    page = await browser.get(MEMBERS)
    invitation_id = re.search(r"/app/organization/invitations/([0-9a-f-]+)/resend", page.text)
    assert invitation_id is not None

    resent = await submit(
        browser, f"/app/organization/invitations/{invitation_id.group(1)}/resend", page=MEMBERS
    )
    assert (await flash_after(browser, resent))[1].startswith("Invitation sent again")
    second = await invitation_link(ctx, "ada@example.com")
    assert second != first
    async with browser_for(app) as anyone:
        assert (await anyone.get(first)).status_code == 400  # only the newest link works

    page = await browser.get(MEMBERS)
    newest = re.search(r"/app/organization/invitations/([0-9a-f-]+)/revoke", page.text)
    assert newest is not None
    revoked = await submit(
        browser, f"/app/organization/invitations/{newest.group(1)}/revoke", page=MEMBERS
    )
    assert (await flash_after(browser, revoked))[1].startswith("Invitation revoked")
    assert "No invitations are waiting." in (await browser.get(MEMBERS)).text
    async with browser_for(app) as anyone:
        assert "This invitation was revoked." in (await anyone.get(second)).text


async def test_invitation_errors_are_shown_beside_the_fields(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Team")
    admin = await add_member(client, ctx, signup, owner, team["id"], "admin")
    async with dashboard(app, admin, team["id"]) as browser:
        page = await browser.get(MEMBERS)
        assert '<option value="owner"' not in page.text  # an admin cannot hand out ownership
        bad = await submit(
            browser, "/app/organization/invitations", {"email": "not-an-address"}, page=MEMBERS
        )
        assert bad.status_code == 422
        assert 'id="f-email-error"' in bad.text
        assert 'value="not-an-address"' in bad.text
        member_again = await submit(
            browser, "/app/organization/invitations", {"email": owner.email}, page=MEMBERS
        )
        assert member_again.status_code == 409
        assert "already a member" in member_again.text
        too_high = await submit(
            browser,
            "/app/organization/invitations",
            {"email": "boss@example.com", "role": "owner"},
            page=MEMBERS,
        )
        assert too_high.status_code == 403
        assert 'id="f-role-error"' in too_high.text
        assert "You cannot invite someone as owner." in too_high.text


# Members and roles


async def test_role_rules(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Team")
    admin = await add_member(client, ctx, signup, owner, team["id"], "admin")
    member = await add_member(client, ctx, signup, owner, team["id"], "member")

    async with dashboard(app, member, team["id"]) as browser:
        page = await browser.get(MEMBERS)
        assert admin.email in page.text
        assert "/role" not in page.text  # a member sees the list only
        assert 'action="/app/organization/invitations"' not in page.text
        refused = await submit(
            browser,
            f"/app/organization/members/{admin.user_id}/role",
            {"role": "member"},
            page=MEMBERS,
        )
        assert refused.status_code == 403
        invited = await submit(
            browser, "/app/organization/invitations", {"email": "x@example.com"}, page=MEMBERS
        )
        assert invited.status_code == 403

    async with dashboard(app, admin, team["id"]) as browser:
        promoted = await submit(
            browser,
            f"/app/organization/members/{member.user_id}/role",
            {"role": "owner"},
            page=MEMBERS,
        )
        assert promoted.status_code == 403
        assert "Only an owner may grant or take away the owner role." in promoted.text
        removed = await submit(
            browser, f"/app/organization/members/{owner.user_id}/remove", page=MEMBERS
        )
        assert removed.status_code == 403
        assert "Only an owner may remove an owner." in removed.text
        made_admin = await submit(
            browser,
            f"/app/organization/members/{member.user_id}/role",
            {"role": "admin"},
            page=MEMBERS,
        )
        assert await flash_after(browser, made_admin) == ("success", "Role changed.")

    async with dashboard(app, owner, team["id"]) as browser:
        demoted = await submit(
            browser,
            f"/app/organization/members/{owner.user_id}/role",
            {"role": "member"},
            page=MEMBERS,
        )
        assert demoted.status_code == 409
        assert "last owner cannot be demoted or removed" in demoted.text
        unknown_role = await submit(
            browser,
            f"/app/organization/members/{member.user_id}/role",
            {"role": "emperor"},
            page=MEMBERS,
        )
        assert unknown_role.status_code == 422
        gone = await submit(
            browser, f"/app/organization/members/{member.user_id}/remove", page=MEMBERS
        )
        assert await flash_after(browser, gone) == ("success", "Member removed.")

    assert await roles_in(client, owner, team["id"]) == {
        owner.email: "owner",
        admin.email: "admin",
    }


async def test_leave_an_organization(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Team")
    member = await add_member(client, ctx, signup, owner, team["id"])
    async with dashboard(app, member, team["id"]) as browser:
        left = await submit(browser, "/app/organization/leave", page="/app/organization")
        assert left.headers["location"] == "/app"
        assert await flash_after(browser, left) == ("success", "You left the organization.")
        # Back in the personal organization.
        page = await browser.get("/app/organization")
        assert "Personal" in page.text
    assert member.email not in await roles_in(client, owner, team["id"])

    async with dashboard(app, owner, team["id"]) as browser:
        refused = await submit(browser, "/app/organization/leave", page="/app/organization")
        assert refused.status_code == 409
        assert "make someone else an owner first" in refused.text
    assert owner.email in await roles_in(client, owner, team["id"])


# Creating and deleting


async def test_create_an_organization_and_work_in_it(browser: httpx.AsyncClient) -> None:
    await sign_up(browser)
    form = await browser.get("/app/organization/new")
    assert form.status_code == 200
    empty = await submit(browser, "/app/organization/new", {"name": "   "}, page=form.url.path)
    assert empty.status_code == 422
    assert 'id="f-name-error"' in empty.text
    created = await submit(
        browser, "/app/organization/new", {"name": "Night Shift"}, page=form.url.path
    )
    assert created.headers["location"] == "/app/organization"
    page = await browser.get("/app/organization")
    assert 'value="Night Shift"' in page.text
    assert "Team" in page.text
    home = await browser.get("/app")
    selected = re.search(r'<option value="[^"]+" selected>([^<]+)</option>', home.text)
    assert selected is not None
    assert selected.group(1) == "Night Shift"


async def test_deleting_needs_the_name_typed(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Doomed Co")
    admin = await add_member(client, ctx, signup, owner, team["id"], "admin")

    async with dashboard(app, admin, team["id"]) as browser:
        assert (
            'action="/app/organization/delete"' not in (await browser.get("/app/organization")).text
        )
        refused = await submit(
            browser,
            "/app/organization/delete",
            {"confirm_name": "Doomed Co"},
            page="/app/organization",
        )
        assert refused.status_code == 403
        assert "Only an owner may delete the organization." in refused.text

    async with dashboard(app, owner, team["id"]) as browser:
        page = await browser.get("/app/organization")
        assert 'action="/app/organization/delete"' in page.text
        assert 'data-confirm="#delete-dialog"' in page.text
        for wrong in ("", "doomed co", "Doomed"):
            response = await submit(
                browser,
                "/app/organization/delete",
                {"confirm_name": wrong},
                page="/app/organization",
            )
            assert response.status_code == 422
            assert 'id="f-confirm_name-error"' in response.text
        assert await organization_name(client, owner, team["id"]) == 200

        deleted = await submit(
            browser,
            "/app/organization/delete",
            {"confirm_name": "Doomed Co"},
            page="/app/organization",
        )
        assert deleted.headers["location"] == "/app"
        assert await flash_after(browser, deleted) == ("success", "Organization deleted.")
        assert "Doomed Co" not in (await browser.get("/app")).text
    assert await organization_name(client, owner, team["id"]) == 404


async def test_a_personal_organization_cannot_be_deleted(
    browser: httpx.AsyncClient,
) -> None:
    await sign_up(browser, organization="Just Me")
    page = await browser.get("/app/organization")
    assert "A personal organization cannot be deleted" in page.text
    assert 'action="/app/organization/delete"' not in page.text
    refused = await submit(
        browser, "/app/organization/delete", {"confirm_name": "Just Me"}, page="/app/organization"
    )
    assert refused.status_code == 409
    assert 'value="Just Me"' in (await browser.get("/app/organization")).text


# Isolation, injection, CSRF


async def test_other_tenants_members_and_invitations_are_404(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    victim = await signup()
    victims = await create_organization(client, victim, "Victim Co")
    their_member = await add_member(client, ctx, signup, victim, victims["id"])
    invitation, _ = await invite(client, ctx, victim, victims["id"], "pending@example.com")
    attacker = await signup()
    async with dashboard(app, attacker) as browser:
        for action, data in (
            (f"/app/organization/members/{their_member.user_id}/role", {"role": "member"}),
            (f"/app/organization/members/{their_member.user_id}/remove", {}),
            (f"/app/organization/invitations/{invitation['id']}/resend", {}),
            (f"/app/organization/invitations/{invitation['id']}/revoke", {}),
        ):
            response = await submit(browser, action, data, page="/app/organization")
            assert response.status_code == 404, action
            assert "Victim Co" not in response.text
    assert their_member.email in await roles_in(client, victim, victims["id"])
    pending = await client.get(
        f"/api/v1/organizations/{victims['id']}/invitations", headers=victim.headers
    )
    assert [i["id"] for i in pending.json()["items"]] == [invitation["id"]]


@pytest.mark.parametrize("payload", PAYLOADS)
async def test_names_and_addresses_render_inert(
    app: FastAPI, ctx: AppContext, signup: SignUp, client: httpx.AsyncClient, payload: str
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, f"Team {payload}")
    member = await add_member(client, ctx, signup, owner, team["id"])
    await invite(client, ctx, owner, team["id"], "pending@example.com")
    link = await invitation_link(ctx, "pending@example.com")
    async with dashboard(app, owner, team["id"]) as browser:
        for path in ("/app", "/app/organization", MEMBERS):
            assert_inert((await browser.get(path)).text, payload)
        # An address that cannot be one comes back in the form, escaped.
        refused = await submit(
            browser, "/app/organization/invitations", {"email": payload}, page=MEMBERS
        )
        assert refused.status_code == 422
        assert_inert(refused.text, payload)
        renamed = await submit(
            browser, "/app/organization/rename", {"name": "x" * 121 + payload}, page=MEMBERS
        )
        assert_inert(renamed.text, payload)
    async with dashboard(app, member, team["id"]) as browser:
        assert_inert((await browser.get(MEMBERS)).text, payload)
    async with browser_for(app) as anyone:
        assert_inert((await anyone.get(link)).text, payload)
    async with browser_for(app) as newcomer:
        await sign_up(newcomer)
        created = await submit(
            newcomer, "/app/organization/new", {"name": payload}, page="/app/organization/new"
        )
        assert created.status_code == 303
        assert_inert((await newcomer.get("/app/organization")).text, payload)


async def test_forms_without_the_csrf_token_change_nothing(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    team = await create_organization(client, owner, "Team")
    member = await add_member(client, ctx, signup, owner, team["id"])
    invitation, token = await invite(client, ctx, owner, team["id"], "later@example.com")
    invitee = await signup("later@example.com")
    async with dashboard(app, owner, team["id"]) as browser:
        for action, data in (
            ("/app/organization/rename", {"name": "Hijacked"}),
            ("/app/organization/delete", {"confirm_name": "Team"}),
            ("/app/organization/leave", {}),
            ("/app/organization/new", {"name": "Forged"}),
            ("/app/organization/invitations", {"email": "evil@example.com"}),
            (f"/app/organization/members/{member.user_id}/role", {"role": "admin"}),
            (f"/app/organization/members/{member.user_id}/remove", {}),
            (f"/app/organization/invitations/{invitation['id']}/revoke", {}),
            (f"/app/organization/invitations/{invitation['id']}/resend", {}),
        ):
            missing = await browser.post(action, data=data)
            assert missing.status_code == 403, action
            wrong = await browser.post(action, data={**data, "csrf_token": "0" * 64})
            assert wrong.status_code == 403, action
    async with dashboard(app, invitee) as browser:
        forged = await browser.post("/invitations/accept", data={"token": token})
        assert forged.status_code == 403
    got = await client.get(f"/api/v1/organizations/{team['id']}", headers=owner.headers)
    assert got.json()["name"] == "Team"
    assert await roles_in(client, owner, team["id"]) == {
        owner.email: "owner",
        member.email: "member",
    }
    organizations = await client.get("/api/v1/organizations", headers=owner.headers)
    assert [o["name"] for o in organizations.json()["items"]][-1] == "Team"
    pending = await client.get(
        f"/api/v1/organizations/{team['id']}/invitations", headers=owner.headers
    )
    assert [i["id"] for i in pending.json()["items"]] == [invitation["id"]]


async def test_signed_out_pages_ask_to_log_in(browser: httpx.AsyncClient) -> None:
    for path in ("/app/organization", MEMBERS, "/app/organization/new"):
        response = await browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
