"""Hostile probes of account deletion: owners whose deletion is already under way must not
count as the owner who keeps an organization's other members from being orphaned."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from saassy.context import AppContext
from saassy.models import Membership, Role
from saassy.privacy.erasure_jobs import AccountEraser
from tests.conftest import SignUp

DELETION = "/api/v1/account/deletion"


async def test_two_owners_deleting_one_after_the_other_cannot_orphan_the_members(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    bob = await signup()
    cy = await signup()
    made = await client.post("/api/v1/organizations", json={"name": "Shared"}, headers=ada.headers)
    assert made.status_code == 201, made.text
    shared = uuid.UUID(made.json()["id"])
    async with ctx.sessionmaker() as session, session.begin():
        session.add(
            Membership(organization_id=shared, user_id=uuid.UUID(bob.user_id), role=Role.owner)
        )
        session.add(
            Membership(organization_id=shared, user_id=uuid.UUID(cy.user_id), role=Role.member)
        )

    first = await client.post(DELETION, json={"password": ada.password}, headers=ada.headers)
    assert first.status_code == 202, first.text
    # Ada's deletion is under way (she cannot sign in again): Bob is now Shared's only owner.
    preview = await client.get(DELETION, headers=bob.headers)
    assert preview.json()["blocking_organizations"] == [str(shared)], preview.text
    second = await client.post(DELETION, json={"password": bob.password}, headers=bob.headers)
    assert second.status_code == 409, second.text

    # Whatever the API said, the members must never be left without an owner.
    await AccountEraser(ctx.sessionmaker, ctx.settings, ctx.storage).erase_due()
    async with ctx.sessionmaker() as session:
        roles = list(
            await session.scalars(
                select(Membership.role).where(Membership.organization_id == shared)
            )
        )
    assert Role.owner in roles, roles
