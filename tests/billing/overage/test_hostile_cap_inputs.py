"""A hostile tenant's bodies for PUT /api/v1/billing/spend-cap: raw JSON the usual clients
would never send, other organizations' credentials, and roles that may only read."""

from __future__ import annotations

import httpx
import pytest

from saassy.context import AppContext
from saassy.models import Role
from tests.billing.overage.conftest import SPEND_CAP, add_member
from tests.conftest import SignUp
from tests.quotas.conftest import issue_api_key


def raw(account_headers: dict[str, str]) -> dict[str, str]:
    return {**account_headers, "Content-Type": "application/json"}


@pytest.mark.parametrize(
    "body",
    [
        '{"monthly_cap_usd": 1e309}',
        '{"monthly_cap_usd": -1e309}',
        '{"monthly_cap_usd": NaN}',
        '{"monthly_cap_usd": Infinity}',
        '{"monthly_cap_usd": "-Infinity"}',
        '{"monthly_cap_usd": "sNaN"}',
        '{"monthly_cap_usd": 0.30000000000000004}',
        '{"monthly_cap_usd": "1e-3"}',
        '{"monthly_cap_usd": "1e8"}',
        '{"monthly_cap_usd": 10000000.01}',
        '{"monthly_cap_usd": "12 34"}',
        '{"monthly_cap_usd": "$25"}',
        '{"monthly_cap_usd": "25,00"}',
        '{"monthly_cap_usd": "0x10"}',
        # Python's Decimal reads these as 1000, 12 (Arabic-Indic) and 12 (fullwidth); no person
        # or other client means them as an amount.
        '{"monthly_cap_usd": "1_000"}',
        '{"monthly_cap_usd": "\u0661\u0662"}',
        '{"monthly_cap_usd": "\uff11\uff12"}',
        '{"monthly_cap_usd": {"amount": 5}}',
        '{"monthly_cap_usd": "1' + "0" * 5000 + '"}',
        '{"monthly_cap_usd": "1e999999999"}',
        '{"cap": "5.00"}',
        "[]",
        '"5.00"',
        "5",
        "null",
        "",
    ],
)
async def test_a_hostile_body_is_422_and_leaves_the_cap(
    client: httpx.AsyncClient, signup: SignUp, body: str
) -> None:
    owner = await signup()
    put = await client.put(SPEND_CAP, json={"monthly_cap_usd": "3.00"}, headers=owner.headers)
    assert put.status_code == 200
    response = await client.put(SPEND_CAP, content=body, headers=raw(owner.headers))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "field" in error
    assert "Traceback" not in response.text
    assert (await client.get(SPEND_CAP, headers=owner.headers)).json()["monthly_cap_usd"] == "3.00"


async def test_a_body_that_is_not_json_is_refused_as_such(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    response = await client.put(SPEND_CAP, content="not json", headers=raw(owner.headers))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_json"
    assert (await client.get(SPEND_CAP, headers=owner.headers)).json()["monthly_cap_usd"] is None


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ('"25"', "25.00"),
        ('"25.10"', "25.10"),
        ("25.1", "25.10"),
        ('"0"', "0.00"),
        ('"-0"', "0.00"),
        ('"0.00"', "0.00"),
        ('"10000000"', "10000000.00"),
        ("10000000", "10000000.00"),
        ('"1e2"', "100.00"),
        ('"25.000"', "25.00"),
        ('"0E-1000000000"', "0.00"),
    ],
)
async def test_a_cap_the_schema_admits_is_stored_exactly(
    client: httpx.AsyncClient, signup: SignUp, sent: str, stored: str
) -> None:
    owner = await signup()
    response = await client.put(
        SPEND_CAP, content=f'{{"monthly_cap_usd": {sent}}}', headers=raw(owner.headers)
    )
    assert response.status_code == 200, response.text
    assert response.json()["monthly_cap_usd"] == stored
    assert (await client.get(SPEND_CAP, headers=owner.headers)).json()["monthly_cap_usd"] == stored


async def test_an_extra_key_cannot_set_anything_else(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    owner = await signup()
    response = await client.put(
        SPEND_CAP,
        json={"monthly_cap_usd": "5.00", "warned": True, "overage_usd": "0", "organization_id": ""},
        headers=owner.headers,
    )
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        assert response.json()["warned"] is False
        assert response.json()["monthly_cap_usd"] == "5.00"


async def test_an_api_key_reads_its_own_cap_and_cannot_change_it(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner = await signup()
    await client.put(SPEND_CAP, json={"monthly_cap_usd": "5.00"}, headers=owner.headers)
    key = {"Authorization": f"Bearer {await issue_api_key(ctx, owner.organization_id)}"}
    assert (await client.get(SPEND_CAP, headers=key)).json()["monthly_cap_usd"] == "5.00"
    for response in (
        await client.put(SPEND_CAP, json={"monthly_cap_usd": "500.00"}, headers=key),
        await client.delete(SPEND_CAP, headers=key),
    ):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "role_required"
    assert (await client.get(SPEND_CAP, headers=owner.headers)).json()["monthly_cap_usd"] == "5.00"


async def test_another_organizations_api_key_cannot_reach_the_cap(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    owner, stranger = await signup(), await signup()
    await client.put(SPEND_CAP, json={"monthly_cap_usd": "5.00"}, headers=owner.headers)
    stranger_key = await issue_api_key(ctx, stranger.organization_id)
    headers = {
        "Authorization": f"Bearer {stranger_key}",
        "Saassy-Organization": owner.organization_id,
    }
    for response in (
        await client.get(SPEND_CAP, headers=headers),
        await client.put(SPEND_CAP, json={"monthly_cap_usd": "0"}, headers=headers),
        await client.delete(SPEND_CAP, headers=headers),
    ):
        assert response.status_code == 404, response.text
        assert owner.organization_id not in response.text
        assert "5.00" not in response.text
    assert (await client.get(SPEND_CAP, headers=owner.headers)).json()["monthly_cap_usd"] == "5.00"


async def test_a_member_promoted_nowhere_cannot_lift_the_cap_through_a_header_trick(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    """A member who owns their personal organization names both in turn: the role is the one
    in the organization named, never the caller's best."""
    owner, member = await signup(), await signup()
    await add_member(ctx, owner.organization_id, member.user_id, Role.member)
    await client.put(SPEND_CAP, json={"monthly_cap_usd": "5.00"}, headers=owner.headers)
    for organization in (owner.organization_id, f" {owner.organization_id}"):
        response = await client.put(
            SPEND_CAP,
            json={"monthly_cap_usd": "900.00"},
            headers={**member.headers, "Saassy-Organization": organization},
        )
        assert response.status_code in (403, 422), response.text
    assert (await client.get(SPEND_CAP, headers=owner.headers)).json()["monthly_cap_usd"] == "5.00"
