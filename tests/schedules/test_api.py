"""The schedule API: bad input is a 422 naming the field, another tenant's schedule is a 404,
and the fields a client sets come back as set."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.schedules.conftest import SCHEDULES, create_schedule
from tests.tasks.conftest import Tenant

VALID: dict[str, Any] = {"name": "Report", "type": "echo", "input": {"message": "hi"}}


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"cron": "61 * * * *"}, "invalid_cron", "cron"),
        ({"cron": "every day"}, "invalid_cron", "cron"),
        ({"cron": "*/5 * * * * *"}, "invalid_cron", "cron"),  # seconds: not a schedule we run
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "unknown_time_zone", "timezone"),
        # Directories of the time zone database, its other files, paths and bytes no zone has.
        ({"cron": "0 9 * * *", "timezone": "Etc"}, "unknown_time_zone", "timezone"),
        ({"cron": "0 9 * * *", "timezone": "America"}, "unknown_time_zone", "timezone"),
        ({"cron": "0 9 * * *", "timezone": "zone.tab"}, "unknown_time_zone", "timezone"),
        ({"cron": "0 9 * * *", "timezone": "../x"}, "unknown_time_zone", "timezone"),
        ({"cron": "0 9 * * *", "timezone": "/etc/localtime"}, "unknown_time_zone", "timezone"),
        ({"cron": "0 9 * * *", "timezone": "UTC\x00"}, "unknown_time_zone", "timezone"),
        ({"cron": "0 9 * * *", "timezone": "Europe/" + "x" * 57}, "unknown_time_zone", "timezone"),
        ({"cron": "0 9 * * *", "timezone": "x" * 65}, "validation_error", "timezone"),
        ({"cron": "0 9 * * *", "timezone": ""}, "validation_error", "timezone"),
        # croniter's extensions, which standard cron does not read: refused.
        ({"cron": "R * * * *"}, "invalid_cron", "cron"),
        ({"cron": "H H * * *"}, "invalid_cron", "cron"),
        ({"cron": "0 9 L * *"}, "invalid_cron", "cron"),
        ({"cron": "0 9 15W * *"}, "invalid_cron", "cron"),
        ({"cron": "0 9 * * 1#2"}, "invalid_cron", "cron"),
        ({"cron": "0 9 ? * *"}, "invalid_cron", "cron"),
        ({"cron": "5/15 * * * *"}, "invalid_cron", "cron"),
        ({"cron": "@reboot"}, "invalid_cron", "cron"),
        ({"cron": "@every 5m"}, "invalid_cron", "cron"),
        ({"cron": "0 9 * * *", "type": "nope"}, "unknown_task_type", "type"),
        ({"cron": "0 9 * * *", "input": {"message": ""}}, "invalid_input", "input.message"),
        ({"cron": "0 9 * * *", "input": {}}, "invalid_input", "input.message"),
        ({"cron": "0 9 * * *", "timeout_s": 601}, "timeout_too_long", "timeout_s"),
        ({"interval_s": 59}, "interval_out_of_range", "interval_s"),
        ({}, "cadence_required", "cron"),
        ({"cron": "0 9 * * *", "interval_s": 3600}, "cadence_required", "cron"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    client: httpx.AsyncClient, tenant: Tenant, changes: dict[str, Any], code: str, field: str
) -> None:
    org = await tenant()
    response = await client.post(SCHEDULES, json={**VALID, **changes}, headers=org.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    listing = await client.get(SCHEDULES, headers=org.headers)
    assert listing.json()["items"] == []


async def test_a_bad_catch_up_is_refused_by_the_schema(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    org = await tenant()
    body = {**VALID, "cron": "0 9 * * *", "catch_up": "always"}
    response = await client.post(SCHEDULES, json=body, headers=org.headers)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "catch_up"


async def test_a_cron_schedule_runs_in_its_time_zone(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    org = await tenant()
    schedule = await create_schedule(
        client, org, cron="0 9 * * mon-fri", timezone="Europe/Paris", catch_up="skip"
    )
    assert schedule["type"] == "echo"
    assert (schedule["cron"], schedule["interval_s"]) == ("0 9 * * mon-fri", None)
    assert schedule["catch_up"] == "skip"
    assert schedule["paused"] is False
    assert schedule["last_refusal"] is None
    runs = [datetime.fromisoformat(moment) for moment in schedule["next_runs"]]
    assert len(runs) == 5
    assert runs == sorted(runs)
    assert runs[0] > datetime.now(UTC)
    for moment in runs:
        local = moment.astimezone(ZoneInfo("Europe/Paris"))
        assert (local.hour, local.minute) == (9, 0)
        assert local.weekday() < 5


async def test_update_pause_resume_delete(client: httpx.AsyncClient, tenant: Tenant) -> None:
    org = await tenant()
    schedule = await create_schedule(client, org, cron="0 9 * * *")
    url = f"{SCHEDULES}/{schedule['id']}"
    changed = await client.patch(
        url, json={"interval_s": 3600, "name": "Hourly", "priority": 5}, headers=org.headers
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["cron"], body["interval_s"], body["name"], body["priority"]) == (
        None,
        3600,
        "Hourly",
        5,
    )
    runs = [datetime.fromisoformat(moment) for moment in body["next_runs"]]
    assert [(b - a).total_seconds() for a, b in itertools.pairwise(runs)] == [3600] * 4

    bad = await client.patch(url, json={"input": {"message": 3}}, headers=org.headers)
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "input.message"
    assert (await client.get(url, headers=org.headers)).json()["input"] == {"message": "hi"}

    null = await client.patch(url, json={"name": None}, headers=org.headers)
    assert null.status_code == 422
    assert null.json()["error"]["field"] == "name"

    paused = await client.post(f"{url}/pause", headers=org.headers)
    assert (paused.json()["paused"], paused.json()["next_runs"]) == (True, [])
    resumed = await client.post(f"{url}/resume", headers=org.headers)
    assert resumed.json()["paused"] is False

    listing = await client.get(SCHEDULES, headers=org.headers)
    assert [item["id"] for item in listing.json()["items"]] == [schedule["id"]]
    deleted = await client.delete(url, headers=org.headers)
    assert deleted.status_code == 204
    assert (await client.get(url, headers=org.headers)).status_code == 404


async def test_another_organization_cannot_see_or_change_a_schedule(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    owner, other = await tenant(), await tenant()
    schedule = await create_schedule(client, owner)
    url = f"{SCHEDULES}/{schedule['id']}"
    attempts = [
        client.get(url, headers=other.headers),
        client.patch(url, json={"name": "Mine"}, headers=other.headers),
        client.post(f"{url}/pause", headers=other.headers),
        client.post(f"{url}/resume", headers=other.headers),
        client.get(f"{url}/runs", headers=other.headers),
        client.delete(url, headers=other.headers),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert (await client.get(SCHEDULES, headers=other.headers)).json()["items"] == []
    mine = await client.get(url, headers=owner.headers)
    assert (mine.json()["name"], mine.json()["paused"]) == ("Nightly", False)


async def test_an_organization_has_a_bounded_number_of_schedules(
    client: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("saassy.schedules.service.MAX_SCHEDULES_PER_ORGANIZATION", 2)
    org = await tenant()
    for _ in range(2):
        await create_schedule(client, org)
    response = await client.post(
        SCHEDULES, json={**VALID, "cron": "0 9 * * *"}, headers=org.headers
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "schedule_limit_reached"


@pytest.mark.parametrize(
    ("cron", "kept"),
    [
        ("*/15 0-23/2 1,15 jan-jun/2 *", "*/15 0-23/2 1,15 jan-jun/2 *"),
        ("0  9 * *   MON-FRI", "0 9 * * MON-FRI"),
        ("0 0 * * 7", "0 0 * * 7"),
        ("@Daily", "@daily"),
        ("@hourly", "@hourly"),
    ],
)
async def test_standard_cron_and_its_macros_are_accepted(
    client: httpx.AsyncClient, tenant: Tenant, cron: str, kept: str
) -> None:
    org = await tenant()
    schedule = await create_schedule(client, org, cron=cron)
    assert schedule["cron"] == kept


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (" Report\nfor ops ", "name: must not contain control characters"),
        ("Rep\x00ort", "name: must not contain control characters"),
        (
            "Report \u202egnp.exe",
            "name: must not contain bidirectional override characters (they can make it "
            "display in another order than it is written)",
        ),
        ("\u200b \u3000", "name: must not be blank (it holds no visible character)"),
        ("N" * 201, None),
    ],
)
async def test_a_schedule_name_is_checked_as_other_names_are(
    client: httpx.AsyncClient, tenant: Tenant, name: str, message: str | None
) -> None:
    org = await tenant()
    body = {**VALID, "cron": "0 9 * * *", "name": name}
    response = await client.post(SCHEDULES, json=body, headers=org.headers)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "name"
    if message is not None:
        assert error["message"] == message
    schedule = await create_schedule(client, org)
    patched = await client.patch(
        f"{SCHEDULES}/{schedule['id']}", json={"name": name}, headers=org.headers
    )
    assert patched.status_code == 422
    assert patched.json()["error"]["field"] == "name"


async def test_a_schedule_name_is_trimmed_before_its_length_is_judged(
    client: httpx.AsyncClient, tenant: Tenant
) -> None:
    org = await tenant()
    kept = "N" * 200
    schedule = await create_schedule(client, org, name=" \u200b" + kept + " \ufeff\u00a0 ")
    assert schedule["name"] == kept
    patched = await client.patch(
        f"{SCHEDULES}/{schedule['id']}", json={"name": "\u2060 Weekly \t"}, headers=org.headers
    )
    assert patched.json()["name"] == "Weekly"
