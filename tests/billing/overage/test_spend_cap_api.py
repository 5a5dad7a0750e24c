"""`/api/v1/billing/spend-cap`: owners and admins set it, members read it, nobody else sees it."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from saassy.context import AppContext
from saassy.models import Role, SpendCap
from tests.billing.overage.conftest import SPEND_CAP, add_member
from tests.conftest import Account, SignUp, client_for


def acting_in(account: Account, organization_id: str) -> dict[str, str]:
    return {**account.headers, "Saassy-Organization": organization_id}


async def test_an_owner_sets_reads_changes_and_removes_the_cap(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    none = await client.get(SPEND_CAP, headers=owner.headers)
    assert none.status_code == 200
    assert none.json()["monthly_cap_usd"] is None
    assert none.json()["share_used"] is None
    assert none.json()["overage_usd"] == "0.00"

    put = await client.put(SPEND_CAP, json={"monthly_cap_usd": "25"}, headers=owner.headers)
    assert put.status_code == 200, put.text
    body = put.json()
    assert body["monthly_cap_usd"] == "25.00"
    assert (body["overage_usd"], body["share_used"], body["warned"]) == ("0.00", 0.0, False)
    assert body["period_start"] < body["period_end"]
    assert (await client.get(SPEND_CAP, headers=owner.headers)).json() == body

    changed = await client.put(SPEND_CAP, json={"monthly_cap_usd": 7.5}, headers=owner.headers)
    assert changed.json()["monthly_cap_usd"] == "7.50"
    zero = await client.put(SPEND_CAP, json={"monthly_cap_usd": "0"}, headers=owner.headers)
    assert (zero.json()["monthly_cap_usd"], zero.json()["share_used"]) == ("0.00", None)

    deleted = await client.delete(SPEND_CAP, headers=owner.headers)
    assert deleted.status_code == 204
    assert (await client.get(SPEND_CAP, headers=owner.headers)).json()["monthly_cap_usd"] is None
    assert (await client.delete(SPEND_CAP, headers=owner.headers)).status_code == 204


@pytest.mark.parametrize(
    "value",
    ["25.001", "-1", "-0.01", "abc", "NaN", "Infinity", "10000000.01", "", None, [], True],
)
async def test_a_bad_cap_is_422_naming_the_field(
    client: httpx.AsyncClient, signup: SignUp, value: object
) -> None:
    owner = await signup()
    response = await client.put(SPEND_CAP, json={"monthly_cap_usd": value}, headers=owner.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("validation_error", "monthly_cap_usd")
    assert (await client.get(SPEND_CAP, headers=owner.headers)).json()["monthly_cap_usd"] is None


async def test_a_missing_cap_is_422(client: httpx.AsyncClient, signup: SignUp) -> None:
    owner = await signup()
    response = await client.put(SPEND_CAP, json={}, headers=owner.headers)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "monthly_cap_usd"


async def test_an_admin_may_set_it_a_member_may_only_read_it(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner, admin, member = await signup(), await signup(), await signup()
    organization_id = owner.organization_id
    await add_member(ctx, organization_id, admin.user_id, Role.admin)
    await add_member(ctx, organization_id, member.user_id, Role.member)

    as_admin = acting_in(admin, organization_id)
    put = await client.put(SPEND_CAP, json={"monthly_cap_usd": "10.00"}, headers=as_admin)
    assert put.status_code == 200, put.text

    as_member = acting_in(member, organization_id)
    for response in (
        await client.put(SPEND_CAP, json={"monthly_cap_usd": "99.00"}, headers=as_member),
        await client.delete(SPEND_CAP, headers=as_member),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "role_required"
    read = await client.get(SPEND_CAP, headers=as_member)
    assert read.status_code == 200
    assert read.json()["monthly_cap_usd"] == "10.00"


async def test_another_organizations_cap_is_out_of_reach(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner, stranger = await signup(), await signup()
    put = await client.put(SPEND_CAP, json={"monthly_cap_usd": "10.00"}, headers=owner.headers)
    assert put.status_code == 200
    as_stranger = acting_in(stranger, owner.organization_id)
    for response in (
        await client.get(SPEND_CAP, headers=as_stranger),
        await client.put(SPEND_CAP, json={"monthly_cap_usd": "0"}, headers=as_stranger),
        await client.delete(SPEND_CAP, headers=as_stranger),
    ):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    # The stranger's own organization has no cap; the owner's is untouched.
    assert (await client.get(SPEND_CAP, headers=stranger.headers)).json()["monthly_cap_usd"] is None
    assert (await client.get(SPEND_CAP, headers=owner.headers)).json()["monthly_cap_usd"] == "10.00"


async def test_without_authentication_it_is_401(client: httpx.AsyncClient) -> None:
    assert (await client.get(SPEND_CAP)).status_code == 401


async def test_concurrent_first_caps_leave_one(
    app: FastAPI, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    async with client_for(app) as client:
        responses = await asyncio.gather(
            *(
                client.put(SPEND_CAP, json={"monthly_cap_usd": f"{n}.00"}, headers=owner.headers)
                for n in range(1, 11)
            )
        )
    assert [r.status_code for r in responses] == [200] * 10, [r.text for r in responses]
    async with ctx.sessionmaker() as session:
        caps = (await session.scalars(select(SpendCap))).all()
    assert len(caps) == 1
