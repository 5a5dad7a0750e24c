"""The 80% and 100% e-mails of the monthly task quota: once per threshold and month, to the
owners and admins who did not turn them off, even with transactions racing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from saassy.billing.caps.overage import reserve_monthly_task
from saassy.context import AppContext
from saassy.kit.errors import QuotaExceeded
from saassy.models import Organization, Role, User
from saassy.notifications.kinds import PREFERENCES_PAGE, NotificationKind
from saassy.notifications.quota import quota_reserved, thresholds_crossed
from saassy.plans.catalog import Plan
from saassy.plans.service import plan_with_overrides
from saassy.quotas.periods import TASKS, quota_window
from saassy.quotas.service import release, reserve
from tests.concurrency import race
from tests.conftest import Account, SignUp
from tests.notifications.support import choose, join, mails_about

LIMIT = 5
CONCURRENT = 50
NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)
WARNING = "used 80% of its monthly tasks"
EXHAUSTED = "used all of its monthly tasks"


async def team(ctx: AppContext, signup: SignUp) -> tuple[Account, list[Account], Plan]:
    """An owner with an admin, a member, a disabled admin; the plan allows LIMIT tasks."""
    owner, admin, member, disabled = [await signup() for _ in range(4)]
    await join(ctx, owner.organization_id, admin.user_id, Role.admin)
    await join(ctx, owner.organization_id, member.user_id, Role.member)
    await join(ctx, owner.organization_id, disabled.user_id, Role.admin)
    async with ctx.sessionmaker() as session, session.begin():
        organization = await session.get(Organization, uuid.UUID(owner.organization_id))
        assert organization is not None
        organization.plan_overrides = {"tasks_per_month": LIMIT}
        user = await session.get(User, uuid.UUID(disabled.user_id))
        assert user is not None
        user.disabled_at = NOW
        plan = plan_with_overrides(
            ctx.settings.catalog, organization.plan, organization.plan_overrides, organization.id
        )
    return owner, [admin, member, disabled], plan


async def take_one(ctx: AppContext, plan: Plan, organization_id: str) -> uuid.UUID:
    async with ctx.sessionmaker() as session, session.begin():
        return await reserve_monthly_task(
            session, ctx.settings, plan, uuid.UUID(organization_id), NOW
        )


def test_the_thresholds_a_reservation_crosses() -> None:
    assert thresholds_crossed(5, 3, 4) == [80]
    assert thresholds_crossed(5, 4, 5) == [100]
    assert thresholds_crossed(5, 0, 5) == [80, 100]
    assert thresholds_crossed(5, 5, 6) == []
    assert thresholds_crossed(10, 7, 8) == [80]
    assert thresholds_crossed(None, 0, 100) == []


async def test_80_and_100_percent_each_mail_the_owners_and_admins_once(
    ctx: AppContext, signup: SignUp
) -> None:
    owner, (admin, member, disabled), plan = await team(ctx, signup)
    for _ in range(3):
        await take_one(ctx, plan, owner.organization_id)
    assert await mails_about(ctx, "monthly tasks") == []
    await take_one(ctx, plan, owner.organization_id)  # 4 of 5
    warnings = await mails_about(ctx, WARNING)
    assert sorted(m.to for m in warnings) == sorted([owner.email.lower(), admin.email.lower()])
    assert "4 of the 5 tasks" in warnings[0].body
    assert "because you are an owner or admin of" in warnings[0].body
    assert PREFERENCES_PAGE in warnings[0].body

    last = await take_one(ctx, plan, owner.organization_id)  # 5 of 5
    exhausted = await mails_about(ctx, EXHAUSTED)
    assert sorted(m.to for m in exhausted) == sorted([owner.email.lower(), admin.email.lower()])
    assert "refused (402 quota_exceeded)" in exhausted[0].body

    # A unit given back and taken again crosses 100% again: no second e-mail.
    async with ctx.sessionmaker() as session, session.begin():
        await release(session, last)
    await take_one(ctx, plan, owner.organization_id)
    with pytest.raises(QuotaExceeded):
        await take_one(ctx, plan, owner.organization_id)
    assert len(await mails_about(ctx, WARNING)) == 2
    assert len(await mails_about(ctx, EXHAUSTED)) == 2
    for account in (member, disabled):
        assert account.email.lower() not in {m.to for m in await mails_about(ctx, "monthly")}


async def test_opted_out_admins_get_neither(ctx: AppContext, signup: SignUp) -> None:
    owner, (admin, _, _), plan = await team(ctx, signup)
    await choose(ctx, admin.user_id, NotificationKind.quota_warning, False)
    await choose(ctx, owner.user_id, NotificationKind.quota_exhausted, False)
    for _ in range(LIMIT):
        await take_one(ctx, plan, owner.organization_id)
    assert [m.to for m in await mails_about(ctx, WARNING)] == [owner.email.lower()]
    assert [m.to for m in await mails_about(ctx, EXHAUSTED)] == [admin.email.lower()]


async def test_daily_action_caps_are_not_mailed(ctx: AppContext, signup: SignUp) -> None:
    owner = await signup()
    organization_id = uuid.UUID(owner.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        organization = await session.get(Organization, organization_id)
        assert organization is not None
        organization.plan_overrides = {"daily_action_caps": {"publish": 1}}
    async with ctx.sessionmaker() as session, session.begin():
        await reserve(session, ctx.settings.catalog, organization_id, "action:publish", now=NOW)
    assert await mails_about(ctx, "monthly") == []


async def test_50_racing_reservations_send_each_threshold_once(
    ctx: AppContext, signup: SignUp
) -> None:
    owner, (admin, _, _), plan = await team(ctx, signup)
    organization_id = uuid.UUID(owner.organization_id)
    outcomes = await race(
        ctx,
        lambda session: reserve_monthly_task(session, ctx.settings, plan, organization_id, NOW),
        CONCURRENT,
    )
    assert sum(isinstance(o, uuid.UUID) for o in outcomes) == LIMIT
    assert all(isinstance(o, uuid.UUID | QuotaExceeded) for o in outcomes), outcomes
    expected = sorted([owner.email.lower(), admin.email.lower()])
    assert sorted(m.to for m in await mails_about(ctx, WARNING)) == expected
    assert sorted(m.to for m in await mails_about(ctx, EXHAUSTED)) == expected


async def test_50_transactions_crossing_the_same_threshold_send_it_once(
    ctx: AppContext, signup: SignUp
) -> None:
    """Units given back let several reservations cross 80% in one month: the unique notice
    key lets one transaction send it, however many race (on PostgreSQL the others wait for
    its commit, then insert nothing)."""
    owner, (admin, _, _), plan = await team(ctx, signup)
    organization_id = uuid.UUID(owner.organization_id)
    window = quota_window(plan, TASKS, NOW)
    outcomes = await race(
        ctx,
        lambda session: quota_reserved(session, ctx.settings, plan, organization_id, window, 4),
        CONCURRENT,
    )
    assert sorted(outcomes) == [0] * (CONCURRENT - 1) + [1]  # type: ignore[type-var]
    expected = sorted([owner.email.lower(), admin.email.lower()])
    assert sorted(m.to for m in await mails_about(ctx, WARNING)) == expected
