"""The per-organization storage quota: taken when an output is collected, shown by /usage,
metered once a day as GB-months."""

from __future__ import annotations

import asyncio
import calendar
import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from saassy.config import Settings
from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.kit.time import utcnow
from saassy.models import StorageUsageDay, TaskStatus
from saassy.quotas.storage import StorageQuota
from saassy.task_output.sweeper import StorageSweeper
from tests.conftest import SignUp
from tests.dispatch.outputs_support import (
    OUTPUTS_CATALOG,
    artifacts_listed,
    assert_storage_matches_rows,
    run_code,
    sandbox_engine,
)
from tests.dispatch.support import set_plan, task_row

__all__ = ["sandbox_engine"]

SIX_MB = """
    import os
    open(os.environ["SAASSY_OUTPUT"] + "/{name}", "wb").write(b"x" * 6 * 2**20)
"""


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(config=OUTPUTS_CATALOG)


async def test_an_output_past_the_storage_quota_is_not_kept(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, sandbox_engine: TaskEngine
) -> None:
    account = await signup()
    await set_plan(ctx.sessionmaker, account.organization_id, "tiny_storage")  # 10 MB
    first = await run_code(
        ctx, sandbox_engine, account.organization_id, SIX_MB.format(name="a.bin")
    )
    assert (await task_row(ctx.sessionmaker, first)).status == TaskStatus.succeeded

    second = await run_code(
        ctx, sandbox_engine, account.organization_id, SIX_MB.format(name="b.bin")
    )
    task = await task_row(ctx.sessionmaker, second)
    assert task.status == TaskStatus.failed
    assert task.error_code == "storage_quota_exceeded"
    assert task.error == (
        "its output was not kept: the organization's storage holds 6.00 MB of its 10.00 MB; "
        "this output needs 6.00 MB more"
    )
    assert await artifacts_listed(client, account.headers, second) == []
    assert [a["path"] for a in await artifacts_listed(client, account.headers, first)] == ["a.bin"]
    await assert_storage_matches_rows(ctx, sandbox_engine)

    usage = await client.get("/api/v1/usage", headers=account.headers)
    assert usage.status_code == 200
    storage = usage.json()["storage"]
    assert (storage["used_mb"], storage["limit_mb"], storage["remaining_mb"]) == (6.0, 10, 4.0)


async def test_concurrent_outputs_never_store_more_than_the_quota(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, sandbox_engine: TaskEngine
) -> None:
    account = await signup()
    await set_plan(ctx.sessionmaker, account.organization_id, "tiny_storage")
    org = account.organization_id
    ids = await asyncio.gather(
        *(run_code(ctx, sandbox_engine, org, SIX_MB.format(name=f"{n}.bin")) for n in range(3))
    )
    statuses = sorted([(await task_row(ctx.sessionmaker, i)).status for i in ids])
    assert statuses == [TaskStatus.failed, TaskStatus.failed, TaskStatus.succeeded]
    usage = (await client.get("/api/v1/usage", headers=account.headers)).json()
    assert usage["storage"]["used_mb"] == 6.0
    await assert_storage_matches_rows(ctx, sandbox_engine)


async def test_storage_is_metered_once_a_day_in_gb_months(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, sandbox_engine: TaskEngine
) -> None:
    account = await signup()
    await run_code(ctx, sandbox_engine, account.organization_id, SIX_MB.format(name="a.bin"))
    now = utcnow()
    sweeper = StorageSweeper(
        ctx.sessionmaker, ctx.settings.catalog, sandbox_engine.storage, clock=lambda: now
    )
    assert (await sweeper.sweep()).organizations_metered == 1
    await sweeper.sweep()  # the same day again: counted once
    sweeper.clock = lambda: now + timedelta(days=1)
    await sweeper.sweep()

    async with ctx.sessionmaker() as session:
        days = (await session.execute(select(StorageUsageDay))).scalars().all()
    assert sorted(day.day for day in days) == [now.date(), now.date() + timedelta(days=1)]
    today = next(day for day in days if day.day == now.date())
    assert today.stored_kib == 6 * 1024
    month_days = calendar.monthrange(now.year, now.month)[1]
    assert today.gb_months == pytest.approx(6 / 1024 / month_days)

    usage = await client.get(
        "/api/v1/usage",
        headers=account.headers,
        params={
            "start": (now - timedelta(days=1)).isoformat(),
            "end": (now + timedelta(days=1)).isoformat(),
        },
    )
    assert usage.json()["storage"]["gb_months"] == pytest.approx(6 / 1024 / month_days, rel=1e-3)


async def test_the_sweep_recounts_storage_a_crash_left_taken(
    ctx: AppContext, client: httpx.AsyncClient, signup: SignUp, sandbox_engine: TaskEngine
) -> None:
    account = await signup()
    await run_code(ctx, sandbox_engine, account.organization_id, SIX_MB.format(name="a.bin"))
    quota = StorageQuota(ctx.sessionmaker, ctx.settings.catalog)
    # Taken for an output whose rows were never written: the process died in between.
    await quota.take(uuid.UUID(account.organization_id), 3 * 1024)
    usage = (await client.get("/api/v1/usage", headers=account.headers)).json()
    assert usage["storage"]["used_mb"] == 9.0

    await StorageSweeper(ctx.sessionmaker, ctx.settings.catalog, sandbox_engine.storage).sweep()

    usage = (await client.get("/api/v1/usage", headers=account.headers)).json()
    assert usage["storage"]["used_mb"] == 6.0
