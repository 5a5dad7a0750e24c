"""Steps the organization, API-key and isolation tests share: invite, accept, create keys."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import select

from saassy.context import AppContext
from saassy.email.outbox import outbox_sealer
from saassy.models import OutboxEmail
from tests.conftest import Account, SignUp

ACCEPT_PATH = "/api/v1/invitations/accept"
TOKEN_IN_LINK = re.compile(r"/invitations/accept\?token=([A-Za-z0-9_\-]+)")


async def last_email_to(ctx: AppContext, address: str) -> tuple[str, str]:
    """(subject, opened body) of the newest message queued for `address`."""
    async with ctx.sessionmaker() as session:
        email = (
            await session.scalars(
                select(OutboxEmail)
                .where(OutboxEmail.to_address == address.lower())
                .order_by(OutboxEmail.created_at.desc())
                .limit(1)
            )
        ).one()
    return email.subject, outbox_sealer(ctx.settings).open(email.body)


async def invite(
    client: httpx.AsyncClient,
    ctx: AppContext,
    inviter: Account | dict[str, str],
    organization_id: str,
    email: str,
    role: str = "member",
) -> tuple[dict[str, Any], str]:
    """Invite `email`; (the invitation, the token from the e-mail)."""
    headers = inviter.headers if isinstance(inviter, Account) else inviter
    response = await client.post(
        f"/api/v1/organizations/{organization_id}/invitations",
        json={"email": email, "role": role},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    _, body = await last_email_to(ctx, email)
    match = TOKEN_IN_LINK.search(body)
    assert match is not None, body
    return response.json(), match.group(1)


async def accept(client: httpx.AsyncClient, account: Account, token: str) -> httpx.Response:
    return await client.post(ACCEPT_PATH, json={"token": token}, headers=account.headers)


async def add_member(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    owner: Account,
    organization_id: str,
    role: str = "member",
) -> Account:
    """A new account that joined `organization_id` through an invitation."""
    member = await signup()
    _, token = await invite(client, ctx, owner, organization_id, member.email, role)
    response = await accept(client, member, token)
    assert response.status_code == 200, response.text
    return member


async def create_organization(
    client: httpx.AsyncClient, account: Account, name: str = "Acme Robotics"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/organizations", json={"name": name}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def create_api_key(
    client: httpx.AsyncClient,
    account: Account,
    organization_id: str | None = None,
    name: str = "ci",
) -> dict[str, Any]:
    headers = dict(account.headers)
    if organization_id is not None:
        headers["Saassy-Organization"] = organization_id
    response = await client.post("/api/v1/api-keys", json={"name": name}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
