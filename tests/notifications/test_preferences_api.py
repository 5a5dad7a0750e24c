"""GET/PUT /api/v1/account/notifications: defaults, partial changes, who may call."""

from __future__ import annotations

import httpx

from saassy.context import AppContext
from tests.conftest import SignUp
from tests.quotas.conftest import issue_api_key

PATH = "/api/v1/account/notifications"
DEFAULTS = {
    "task_failed": False,
    "quota_warning": True,
    "quota_exhausted": True,
    "webhook_disabled": True,
    "payment_failed": True,
}


def as_map(body: dict[str, list[dict[str, object]]]) -> dict[object, object]:
    return {item["kind"]: item["enabled"] for item in body["preferences"]}


async def test_the_defaults_then_a_put_changes_only_the_kinds_it_names(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    shown = await client.get(PATH, headers=ada.headers)
    assert shown.status_code == 200, shown.text
    assert as_map(shown.json()) == DEFAULTS
    assert all(item["enabled"] == item["default"] for item in shown.json()["preferences"])

    changed = await client.put(
        PATH, json={"task_failed": True, "payment_failed": False}, headers=ada.headers
    )
    assert changed.status_code == 200, changed.text
    expected = {**DEFAULTS, "task_failed": True, "payment_failed": False}
    assert as_map(changed.json()) == expected
    assert as_map((await client.get(PATH, headers=ada.headers)).json()) == expected

    # Another user's are their own.
    bob = await signup()
    assert as_map((await client.get(PATH, headers=bob.headers)).json()) == DEFAULTS


async def test_an_unknown_kind_or_a_non_boolean_is_refused(
    client: httpx.AsyncClient, signup: SignUp
) -> None:
    ada = await signup()
    unknown = await client.put(PATH, json={"newsletter": True}, headers=ada.headers)
    assert unknown.status_code == 422
    for value in ("sometimes", "no", "off", "true", 0, 1, None):
        wrong = await client.put(PATH, json={"task_failed": value}, headers=ada.headers)
        assert wrong.status_code == 422, value
        assert wrong.json()["error"]["field"] == "task_failed", value
    assert as_map((await client.get(PATH, headers=ada.headers)).json()) == DEFAULTS


async def test_an_api_key_has_no_preferences_and_strangers_none_at_all(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    key = await issue_api_key(ctx, ada.organization_id)
    refused = await client.get(PATH, headers={"Authorization": f"Bearer {key}"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "user_required"
    assert (await client.get(PATH)).status_code == 401
    assert (await client.put(PATH, json={"task_failed": True})).status_code == 401
