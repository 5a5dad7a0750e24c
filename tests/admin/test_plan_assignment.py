"""Staff put organizations on plans; the customer's /usage follows. Nobody else may."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from saassy.context import AppContext
from tests.conftest import Account, SignUp
from tests.quotas.conftest import issue_api_key, make_staff


@pytest.fixture
async def staff(signup: SignUp, ctx: AppContext) -> Account:
    account = await signup()
    await make_staff(ctx, account.user_id)
    return account


def _limits(usage: dict[str, Any]) -> dict[str, int | None]:
    return {quota["metric"]: quota["limit"] for quota in usage["quotas"]}


async def test_staff_changes_the_plan_and_usage_shows_the_new_limits(
    client: httpx.AsyncClient, signup: SignUp, staff: Account
) -> None:
    customer = await signup()
    assert _limits((await client.get("/api/v1/usage", headers=customer.headers)).json()) == {
        "tasks": 100,
        "action:publish": 5,
    }

    response = await client.put(
        f"/api/v1/admin/organizations/{customer.organization_id}/plan",
        json={"plan": "pro"},
        headers=staff.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["plan"] == "pro"
    assert response.json()["plan_overrides"] == {}

    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["plan"] == {"key": "pro", "name": "Pro"}
    assert _limits(usage) == {"tasks": 10000, "action:publish": 100}
    assert usage["limits"]["max_concurrent_tasks"] == 10


async def test_overrides_apply_on_top_of_the_plan_and_are_replaced_by_the_next_put(
    client: httpx.AsyncClient, signup: SignUp, staff: Account
) -> None:
    customer = await signup()
    url = f"/api/v1/admin/organizations/{customer.organization_id}/plan"
    overrides = {
        "tasks_per_month": 50000,
        "daily_action_caps": {"publish": 700, "export": 3},
        "resources": {"memory_mb": 32768},
        "max_concurrent_tasks": 80,
    }
    response = await client.put(
        url, json={"plan": "enterprise", "overrides": overrides}, headers=staff.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["plan_overrides"] == overrides

    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["plan"]["key"] == "enterprise"
    assert _limits(usage) == {"tasks": 50000, "action:export": 3, "action:publish": 700}
    assert usage["limits"]["max_concurrent_tasks"] == 80
    # Merged key by key: the plan's 8 CPUs stay.
    assert usage["limits"]["resources"]["memory_mb"] == 32768
    assert usage["limits"]["resources"]["cpus"] == 8

    await client.put(url, json={"plan": "enterprise"}, headers=staff.headers)
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert _limits(usage) == {"tasks": None}
    assert usage["limits"]["max_concurrent_tasks"] == 50


async def test_staff_reads_an_organizations_usage(
    client: httpx.AsyncClient, signup: SignUp, staff: Account
) -> None:
    customer = await signup()
    response = await client.get(
        f"/api/v1/admin/organizations/{customer.organization_id}/usage", headers=staff.headers
    )
    assert response.status_code == 200
    assert response.json()["organization_id"] == customer.organization_id


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"plan": "platinum"}, "plan", "unknown_plan"),
        ({"plan": "pro", "overrides": {"colour": "red"}}, "overrides.colour", "invalid_override"),
        (
            {"plan": "pro", "overrides": {"max_concurrent_tasks": 0}},
            "overrides.max_concurrent_tasks",
            "invalid_override",
        ),
        (
            {"plan": "pro", "overrides": {"resources": {"memory_mb": "lots"}}},
            "overrides.resources.memory_mb",
            "invalid_override",
        ),
        (
            {"plan": "pro", "overrides": {"api_rate_limit": "fast"}},
            "overrides.api_rate_limit",
            "invalid_override",
        ),
        ({"overrides": {}}, "plan", "validation_error"),
    ],
)
async def test_a_bad_assignment_is_422_naming_the_field(
    client: httpx.AsyncClient,
    signup: SignUp,
    staff: Account,
    body: dict[str, Any],
    field: str,
    code: str,
) -> None:
    customer = await signup()
    response = await client.put(
        f"/api/v1/admin/organizations/{customer.organization_id}/plan",
        json=body,
        headers=staff.headers,
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["field"], error["code"]) == (field, code)
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["plan"]["key"] == "free"


async def test_an_unknown_organization_is_404(client: httpx.AsyncClient, staff: Account) -> None:
    missing = uuid.uuid4()
    put = await client.put(
        f"/api/v1/admin/organizations/{missing}/plan", json={"plan": "pro"}, headers=staff.headers
    )
    get = await client.get(f"/api/v1/admin/organizations/{missing}", headers=staff.headers)
    assert (put.status_code, get.status_code) == (404, 404)
    assert put.json()["error"]["code"] == "not_found"


async def test_non_staff_are_refused(
    client: httpx.AsyncClient, signup: SignUp, ctx: AppContext
) -> None:
    customer = await signup()
    key = await issue_api_key(ctx, customer.organization_id)
    url = f"/api/v1/admin/organizations/{customer.organization_id}/plan"

    as_user = await client.put(url, json={"plan": "pro"}, headers=customer.headers)
    assert as_user.status_code == 403
    assert as_user.json()["error"]["code"] == "staff_required"
    listing = await client.get("/api/v1/admin/organizations", headers=customer.headers)
    assert listing.status_code == 403
    as_key = await client.put(url, json={"plan": "pro"}, headers={"Authorization": f"Bearer {key}"})
    assert as_key.status_code == 403
    assert (await client.put(url, json={"plan": "pro"})).status_code == 401

    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["plan"]["key"] == "free"


async def test_staff_page_through_organizations_with_their_plans(
    client: httpx.AsyncClient, signup: SignUp, staff: Account
) -> None:
    customers = [await signup() for _ in range(2)]
    await client.put(
        f"/api/v1/admin/organizations/{customers[0].organization_id}/plan",
        json={"plan": "starter"},
        headers=staff.headers,
    )
    seen: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        response = await client.get(
            "/api/v1/admin/organizations", params=params, headers=staff.headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 1
        seen.update({item["id"]: item["plan"] for item in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = {staff.organization_id: "free", customers[1].organization_id: "free"}
    assert seen == {**expected, customers[0].organization_id: "starter"}

    starters = await client.get(
        "/api/v1/admin/organizations", params={"plan": "starter"}, headers=staff.headers
    )
    assert [item["id"] for item in starters.json()["items"]] == [customers[0].organization_id]


async def test_storage_limits_follow_the_plan_and_its_overrides_for_staff_and_customer(
    client: httpx.AsyncClient, signup: SignUp, staff: Account
) -> None:
    customer = await signup()
    usage = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    assert usage["storage"] == {
        "used_mb": 0.0,
        "limit_mb": 100,
        "remaining_mb": 100.0,
        "retention_days": 7,
        "gb_months": 0.0,
    }
    url = f"/api/v1/admin/organizations/{customer.organization_id}"
    overrides = {"storage_mb": 2048, "retention_days": None}
    put = await client.put(
        f"{url}/plan", json={"plan": "free", "overrides": overrides}, headers=staff.headers
    )
    assert put.status_code == 200, put.text
    seen_by_staff = (await client.get(f"{url}/usage", headers=staff.headers)).json()
    seen_by_customer = (await client.get("/api/v1/usage", headers=customer.headers)).json()
    for usage in (seen_by_staff, seen_by_customer):
        assert (usage["storage"]["limit_mb"], usage["storage"]["retention_days"]) == (2048, None)
