"""A schedule runs as the member or key that created it; once that one may no longer submit
tasks (left, disabled, revoked, expired) the scheduler pauses it, saying why, and submits
nothing; whoever resumes it becomes the one it runs as."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from saassy.cli.schedules import next_run as cli_next_run
from saassy.context import AppContext
from saassy.kit.security import new_token, token_digest
from saassy.kit.time import utcnow
from saassy.models import ApiKey, User
from tests.audit.support import entries
from tests.conftest import Account, SignUp
from tests.organizations.support import add_member, create_organization
from tests.schedules.conftest import (
    SCHEDULES,
    Schedulers,
    SimulatedClock,
    create_schedule,
    next_run,
    tasks_of,
)
from tests.tasks.conftest import Tenant, TenantKey


async def set_key(ctx: AppContext, key_id: str, **values: Any) -> None:
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(update(ApiKey).where(ApiKey.id == uuid.UUID(key_id)).values(**values))


async def another_key(ctx: AppContext, org: TenantKey) -> tuple[TenantKey, uuid.UUID]:
    """Another key of the organization, and its id."""
    key = f"sk_{new_token()}"
    async with ctx.sessionmaker() as session, session.begin():
        api_key = ApiKey(
            organization_id=org.organization_id,
            name="other",
            prefix=key[:10],
            key_hash=token_digest(key),
        )
        session.add(api_key)
        await session.flush()
    return TenantKey(org.organization_id, key), api_key.id


async def owner_and_member(
    client: httpx.AsyncClient, ctx: AppContext, signup: SignUp
) -> tuple[Account, Account, str]:
    """The owner of a new organization, a member of it, and its id."""
    owner = await signup()
    organization_id = (await create_organization(client, owner))["id"]
    member = await add_member(client, ctx, signup, owner, organization_id)
    return owner, member, organization_id


async def fire(clock: SimulatedClock, schedulers: Schedulers, at: Any) -> tuple[int, int]:
    (scheduler,) = await schedulers(1)
    clock.set(at + timedelta(seconds=1))
    return await scheduler.fire_due()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"revoked_at": utcnow()}, "api_key_revoked"),
        ({"expires_at": utcnow() - timedelta(seconds=1)}, "api_key_expired"),
    ],
)
async def test_a_schedule_of_a_key_that_stopped_working_pauses_and_runs_as_who_resumes_it(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    clock: SimulatedClock,
    schedulers: Schedulers,
    change: dict[str, Any],
    reason: str,
) -> None:
    org = await tenant()
    schedule = await create_schedule(client, org)
    creator_key = schedule["run_as"]["api_key_id"]
    assert schedule["run_as"] == {"user_id": None, "api_key_id": creator_key}
    assert schedule["paused_reason"] is None
    await set_key(ctx, creator_key, **change)

    assert await fire(clock, schedulers, next_run(schedule)) == (0, 1)
    assert await tasks_of(ctx, org.organization_id) == []
    other, _ = await another_key(ctx, org)
    paused = (await client.get(f"{SCHEDULES}/{schedule['id']}", headers=other.headers)).json()
    assert paused["paused"] is True
    assert paused["next_runs"] == []
    assert paused["paused_reason"]["code"] == reason
    assert "resume it to run it as you" in paused["paused_reason"]["message"]
    assert paused["paused_at"] is not None
    (entry,) = await entries(ctx, "schedule.paused")
    assert (entry.actor_user_id, entry.actor_api_key_id) == (None, None)
    assert entry.details == {"name": "Nightly", "reason": reason}

    resumed = await client.post(f"{SCHEDULES}/{schedule['id']}/resume", headers=other.headers)
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert (body["paused"], body["paused_reason"], body["paused_at"]) == (False, None, None)
    assert body["run_as"]["api_key_id"] not in (None, creator_key)
    (entry,) = await entries(ctx, "schedule.resumed")
    assert entry.details == {"name": "Nightly", "took_over": True}
    assert str(entry.actor_api_key_id) == body["run_as"]["api_key_id"]

    assert await fire(clock, schedulers, next_run(body)) == (1, 1)
    (task,) = await tasks_of(ctx, org.organization_id)
    assert str(task.submitted_by_api_key_id) == body["run_as"]["api_key_id"]


async def test_a_rotated_keys_schedule_moves_on_to_its_replacement(
    client: httpx.AsyncClient,
    ctx: AppContext,
    tenant: Tenant,
    clock: SimulatedClock,
    schedulers: Schedulers,
) -> None:
    org = await tenant()
    schedule = await create_schedule(client, org)
    old_key = schedule["run_as"]["api_key_id"]
    replacement, replacement_id = await another_key(ctx, org)
    # As a rotation leaves the old key once its overlap has ended.
    await set_key(
        ctx,
        old_key,
        rotated_at=utcnow(),
        replaced_by_id=replacement_id,
        expires_at=utcnow() - timedelta(seconds=1),
    )
    assert await fire(clock, schedulers, next_run(schedule)) == (1, 1)
    (task,) = await tasks_of(ctx, org.organization_id)
    assert task.submitted_by_api_key_id == replacement_id
    after = (await client.get(f"{SCHEDULES}/{schedule['id']}", headers=replacement.headers)).json()
    assert (after["paused"], after["run_as"]["api_key_id"]) == (False, str(replacement_id))


async def test_a_removed_members_schedule_pauses_and_runs_as_the_member_who_resumes_it(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    clock: SimulatedClock,
    schedulers: Schedulers,
) -> None:
    owner, member, organization_id = await owner_and_member(client, ctx, signup)
    in_org = {"Saassy-Organization": organization_id}
    body = {"name": "Nightly", "type": "echo", "input": {"message": "hi"}, "cron": "* * * * *"}
    created = await client.post(SCHEDULES, json=body, headers=member.headers | in_org)
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["run_as"] == {"user_id": member.user_id, "api_key_id": None}
    removed = await client.delete(
        f"/api/v1/organizations/{organization_id}/members/{member.user_id}",
        headers=owner.headers,
    )
    assert removed.status_code == 204, removed.text

    assert await fire(clock, schedulers, next_run(schedule)) == (0, 1)
    assert await tasks_of(ctx, uuid.UUID(organization_id)) == []
    url = f"{SCHEDULES}/{schedule['id']}"
    paused = (await client.get(url, headers=owner.headers | in_org)).json()
    assert paused["paused"] is True
    assert paused["paused_reason"] == {
        "code": "member_left",
        "message": "Paused: the member it ran as left the organization; resume it to run it "
        "as you.",
    }

    resumed = await client.post(f"{url}/resume", headers=owner.headers | in_org)
    assert resumed.json()["run_as"] == {"user_id": owner.user_id, "api_key_id": None}
    assert await fire(clock, schedulers, next_run(resumed.json())) == (1, 1)
    (task,) = await tasks_of(ctx, uuid.UUID(organization_id))
    assert str(task.submitted_by_user_id) == owner.user_id


async def test_a_disabled_accounts_schedule_pauses_and_a_plain_resume_keeps_a_valid_actor(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    clock: SimulatedClock,
    schedulers: Schedulers,
) -> None:
    owner, member, organization_id = await owner_and_member(client, ctx, signup)
    in_org = {"Saassy-Organization": organization_id}
    schedule = (
        await client.post(
            SCHEDULES,
            json={"name": "N", "type": "echo", "input": {"message": "hi"}, "cron": "* * * * *"},
            headers=owner.headers | in_org,
        )
    ).json()
    url = f"{SCHEDULES}/{schedule['id']}"
    # A pause and resume by another member, the owner still a member: it still runs as the owner.
    await client.post(f"{url}/pause", headers=member.headers | in_org)
    kept = (await client.post(f"{url}/resume", headers=member.headers | in_org)).json()
    assert kept["run_as"]["user_id"] == owner.user_id
    assert [e.details["took_over"] for e in await entries(ctx, "schedule.resumed")] == [False]

    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            update(User).where(User.id == uuid.UUID(owner.user_id)).values(disabled_at=utcnow())
        )
    assert await fire(clock, schedulers, next_run(kept)) == (0, 1)
    paused = (await client.get(url, headers=member.headers | in_org)).json()
    assert paused["paused_reason"]["code"] == "account_disabled"
    assert await tasks_of(ctx, uuid.UUID(organization_id)) == []


def test_the_cli_list_says_why_a_scheduler_paused_a_schedule() -> None:
    reason = {"code": "api_key_revoked", "message": "Paused: ..."}
    assert cli_next_run({"paused": True, "paused_reason": reason}) == "paused (api_key_revoked)"
    assert cli_next_run({"paused": True, "paused_reason": None}) == "paused"
