"""The opt-in e-mail when a task fails: to its submitter, at most ten an hour."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Update, update

from saassy.context import AppContext
from saassy.dispatch.engine import TaskEngine
from saassy.kit.time import utcnow
from saassy.models import (
    ApiKey,
    Membership,
    Role,
    RunOutcome,
    Schedule,
    ScheduleRun,
    Task,
    TaskStatus,
)
from saassy.notifications.kinds import PREFERENCES_PAGE, NotificationKind
from saassy.notifications.task_failed import PER_HOUR, TaskFailureNotices
from saassy.runtime.fake import FakeRuntime, FakeScript
from tests.conftest import Account, SignUp
from tests.dispatch.support import insert_tasks, task_row, wait_for_status
from tests.email.mail import outbox
from tests.notifications.support import choose, join, mails_about
from tests.quotas.conftest import issue_api_key

SECRET_INPUT = "input-that-must-not-be-mailed"


async def held_failing_task(
    ctx: AppContext, fake_runtime: FakeRuntime, submitter: Account, input: object = None
) -> uuid.UUID:
    """A task of `submitter`'s that will exit 3, not claimable before `release` (so the engine
    cannot run it before the test has made what goes with it)."""
    task_id = uuid.uuid4()
    fake_runtime.script(f"task-{task_id}-attempt-1", FakeScript(exit_code=3))
    await insert_tasks(
        ctx.sessionmaker,
        ctx.settings.catalog,
        submitter.organization_id,
        run_after_offset_s=3600,
        input=input,
        task_ids=[task_id],
    )
    return task_id


def release(task_id: uuid.UUID, submitter: Account) -> Update:
    """Names its submitter and makes it due."""
    return (
        update(Task)
        .where(Task.id == task_id)
        .values(submitted_by_user_id=uuid.UUID(submitter.user_id), run_after=utcnow())
    )


async def failing_task(
    ctx: AppContext, engine: TaskEngine, fake_runtime: FakeRuntime, submitter: Account
) -> uuid.UUID:
    """A task submitted by `submitter` that exits 3, run to its end by the engine."""
    task_id = await held_failing_task(ctx, fake_runtime, submitter, input={"note": SECRET_INPUT})
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(release(task_id, submitter))
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id])
    return task_id


async def test_a_failed_task_is_mailed_to_its_submitter_only_once_opted_in(
    client: httpx.AsyncClient,
    ctx: AppContext,
    signup: SignUp,
    engine: TaskEngine,
    fake_runtime: FakeRuntime,
) -> None:
    ada = await signup()
    before = len(await outbox(ctx))
    ctx.outbox_wakeup.clear()
    await failing_task(ctx, engine, fake_runtime, ada)
    assert len(await outbox(ctx)) == before  # off by default
    await asyncio.sleep(0.05)  # what follows the outcome's commit has run
    assert not ctx.outbox_wakeup.is_set()  # nothing queued: the e-mail relay sleeps on

    opted = await client.put(
        "/api/v1/account/notifications", json={"task_failed": True}, headers=ada.headers
    )
    assert opted.status_code == 200
    task_id = await failing_task(ctx, engine, fake_runtime, ada)
    assert (await task_row(ctx.sessionmaker, task_id)).status == TaskStatus.failed
    async with asyncio.timeout(3.0):  # the e-mail relay is woken by the commit, not its poll
        await ctx.outbox_wakeup.wait()
    [mail] = await mails_about(ctx, "failed")
    assert mail.to == ada.email.lower()
    assert str(task_id)[:8] in mail.subject
    assert f"Task: {task_id}" in mail.body
    assert "Type: noop" in mail.body
    assert "Error code: exit_code" in mail.body
    assert f"/app/tasks/{task_id}" in mail.body
    assert "because you submitted this task" in mail.body
    assert PREFERENCES_PAGE in mail.body
    assert SECRET_INPUT not in mail.body

    # A task that succeeds sends nothing.
    [ok] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, ada.organization_id)
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [ok])
    assert len(await mails_about(ctx, "failed")) == 1


async def ended(ctx: AppContext, task_id: uuid.UUID, now: datetime) -> bool:
    async with ctx.sessionmaker() as session, session.begin():
        task = await session.get(Task, task_id)
        assert task is not None
        return await TaskFailureNotices(ctx.settings).task_ended(
            session, task, TaskStatus.failed, error_code="exit_code", error="boom", now=now
        )


async def a_task(
    ctx: AppContext, account: Account, *, by_key: uuid.UUID | None = None
) -> uuid.UUID:
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        values = (
            {"submitted_by_api_key_id": by_key}
            if by_key
            else {"submitted_by_user_id": uuid.UUID(account.user_id)}
        )
        await session.execute(update(Task).where(Task.id == task_id).values(**values))
    return task_id


async def test_an_api_key_submission_goes_to_the_keys_creator_while_a_member(
    ctx: AppContext, signup: SignUp
) -> None:
    owner, creator = await signup(), await signup()
    await join(ctx, owner.organization_id, creator.user_id, Role.admin)
    await issue_api_key(ctx, owner.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        key = (await session.execute(ApiKey.__table__.select())).first()
        assert key is not None
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key.id)
            .values(created_by_user_id=uuid.UUID(creator.user_id))
        )
    for account in (owner, creator):
        await choose(ctx, account.user_id, NotificationKind.task_failed, True)
    task_id = await a_task(ctx, owner, by_key=key.id)
    now = datetime.now(UTC)

    assert await ended(ctx, task_id, now) is True
    [mail] = await mails_about(ctx, "failed")
    assert mail.to == creator.email.lower()
    assert "an API key you created submitted this task" in mail.body
    assert "Error: boom" in mail.body

    # No longer a member: nobody is told.
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(
            Membership.__table__.delete().where(
                Membership.user_id == uuid.UUID(creator.user_id),
                Membership.organization_id == uuid.UUID(owner.organization_id),
            )
        )
    assert await ended(ctx, task_id, now) is False
    assert len(await mails_about(ctx, "failed")) == 1


async def test_an_opted_out_submitter_gets_nothing(ctx: AppContext, signup: SignUp) -> None:
    ada = await signup()
    await choose(ctx, ada.user_id, NotificationKind.task_failed, True)
    await choose(ctx, ada.user_id, NotificationKind.task_failed, False)
    task_id = await a_task(ctx, ada)
    assert await ended(ctx, task_id, datetime.now(UTC)) is False
    assert await mails_about(ctx, "failed") == []


async def test_at_most_ten_an_hour_and_the_next_hour_says_how_many_were_left_out(
    ctx: AppContext, signup: SignUp
) -> None:
    ada = await signup()
    await choose(ctx, ada.user_id, NotificationKind.task_failed, True)
    task_id = await a_task(ctx, ada)
    hour = datetime(2026, 12, 6, 9, tzinfo=UTC)
    sent = [await ended(ctx, task_id, hour + timedelta(seconds=i)) for i in range(PER_HOUR + 5)]
    assert sent == [True] * PER_HOUR + [False] * 5
    mails = await mails_about(ctx, "failed")
    assert len(mails) == PER_HOUR
    assert "further failures this hour are counted, not e-mailed" in mails[-1].body
    assert "further failures" not in mails[0].body

    assert await ended(ctx, task_id, hour + timedelta(hours=1, minutes=5)) is True
    latest = (await mails_about(ctx, "failed"))[-1]
    assert "In the previous hour, 5 more of your tasks failed without an e-mail." in latest.body


async def test_a_scheduled_runs_failure_names_its_schedule(
    ctx: AppContext, signup: SignUp, engine: TaskEngine, fake_runtime: FakeRuntime
) -> None:
    ada = await signup()
    await choose(ctx, ada.user_id, NotificationKind.task_failed, True)
    org_id, ada_id = uuid.UUID(ada.organization_id), uuid.UUID(ada.user_id)
    task_id = await held_failing_task(ctx, fake_runtime, ada)
    async with ctx.sessionmaker() as session, session.begin():
        await session.execute(release(task_id, ada))
        schedule = Schedule(
            organization_id=org_id,
            name="nightly report",
            task_type="noop",
            input={},
            interval_s=3600,
            next_run_at=datetime.now(UTC),
            run_as_user_id=ada_id,
        )
        session.add(schedule)
        await session.flush()
        session.add(
            ScheduleRun(
                schedule_id=schedule.id,
                organization_id=org_id,
                due_at=datetime.now(UTC),
                outcome=RunOutcome.queued,
                task_id=task_id,
            )
        )
    engine.notify_submitted()
    await wait_for_status(ctx.sessionmaker, [task_id])

    [mail] = await mails_about(ctx, "failed")
    assert "A noop task of the schedule 'nightly report' failed." in mail.body
    assert f"/app/schedules/{schedule.id}" in mail.body
    assert "because the schedule that submitted this task runs as you" in mail.body
