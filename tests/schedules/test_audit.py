"""Creating, changing, pausing, resuming and deleting a schedule each write exactly one audit
entry, with the member or key that did it, the organization, address and user agent."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from saassy.context import AppContext
from tests.audit.support import HEADERS, USER_AGENT, action_counts, entries
from tests.conftest import CLIENT_IP, SignUp
from tests.schedules.conftest import SCHEDULES, create_schedule
from tests.tasks.conftest import Tenant

BODY = {"name": "Nightly", "type": "echo", "input": {"message": "hi"}, "cron": "0 2 * * *"}


async def test_each_schedule_change_is_one_entry_by_the_member_who_made_it(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    headers = ada.headers | HEADERS
    created = await client.post(SCHEDULES, json=BODY, headers=headers)
    assert created.status_code == 201, created.text
    url = f"{SCHEDULES}/{created.json()['id']}"
    changed = await client.patch(url, json={"cron": "0 3 * * *", "name": "Late"}, headers=headers)
    assert changed.status_code == 200
    for action in ("pause", "pause", "resume", "resume"):  # the second of each changes nothing
        assert (await client.post(f"{url}/{action}", headers=headers)).status_code == 200
    assert (await client.delete(url, headers=headers)).status_code == 204

    assert await action_counts(ctx) == {
        "schedule.created": 1,
        "schedule.updated": 1,
        "schedule.paused": 1,
        "schedule.resumed": 1,
        "schedule.deleted": 1,
    }
    schedule_id = uuid.UUID(created.json()["id"])
    found = await entries(ctx)
    for entry in found:
        assert str(entry.actor_user_id) == ada.user_id
        assert entry.actor_api_key_id is None
        assert str(entry.organization_id) == ada.organization_id
        assert (entry.target_type, entry.target_id) == ("schedule", schedule_id)
        assert (entry.ip, entry.user_agent) == (CLIENT_IP, USER_AGENT)
    assert [entry.details for entry in found] == [
        {"name": "Nightly", "type": "echo", "paused": False},
        {"name": "Late", "changed": ["cron", "name"]},
        {"name": "Late"},
        {"name": "Late", "took_over": False},
        {"name": "Late"},
    ]
    # The owner reads them in the organization's log.
    log = await client.get(
        f"/api/v1/organizations/{ada.organization_id}/audit", headers=ada.headers
    )
    assert log.json()["items"][0]["action"] == "schedule.deleted"


async def test_a_key_is_the_actor_of_what_it_does_and_a_race_writes_one_entry(
    client: httpx.AsyncClient, ctx: AppContext, tenant: Tenant
) -> None:
    org = await tenant()
    schedule = await create_schedule(client, org)
    url = f"{SCHEDULES}/{schedule['id']}"
    answers = await asyncio.gather(
        *(client.post(f"{url}/pause", headers=org.headers) for _ in "ab")
    )
    assert {answer.status_code for answer in answers} == {200}
    assert await action_counts(ctx) == {"schedule.created": 1, "schedule.paused": 1}
    for entry in await entries(ctx):
        assert entry.actor_user_id is None
        assert str(entry.actor_api_key_id) == schedule["run_as"]["api_key_id"]
        assert entry.organization_id == org.organization_id
