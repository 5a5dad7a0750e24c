"""What an attempt costs the database: a few statements per outcome and per dispatch round.

On SQLite each statement holds the only connection for a turn of the event loop, so these
counts are the engine's throughput; a change that adds one should be a decision, not a drift.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

from saassy.context import AppContext
from saassy.dispatch.outcome import AttemptOutcome, write_outcome
from saassy.dispatch.repository import DispatchRepository
from saassy.kit.time import utcnow
from saassy.models import AttemptStatus, ReservationStatus, TaskStatus
from saassy.runtime.base import Usage
from saassy.runtime.fake import FakeRuntime, FakeScript
from tests.conftest import SignUp
from tests.dispatch.conftest import EngineFactory
from tests.dispatch.support import (
    insert_tasks,
    reservation_of,
    set_plan,
    statements_on,
    task_row,
    usage_of,
)


def kind(statement: str) -> str:
    """`UPDATE tasks`, `INSERT INTO usage_records`, `SELECT ...`: the verb and its table."""
    words = statement.split()
    return " ".join(words[:3] if words[0] == "INSERT" else words[:2])


async def test_a_successful_attempts_outcome_is_five_statements(
    ctx: AppContext, signup: SignUp
) -> None:
    account = await signup()
    [task_id] = await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        [claim] = await DispatchRepository(session).claim(
            [task_id], executor_id="supervisor", now=utcnow(), lease=timedelta(30), running=True
        )
    noop = AttemptOutcome(
        AttemptStatus.succeeded,
        exit_code=0,
        end_reason="exited",
        usage=Usage(cpu_seconds=0.002, peak_memory_bytes=2**21, wall_seconds=0.01),
        result={},
    )

    with statements_on(ctx.engine) as seen:
        async with ctx.sessionmaker() as session, session.begin():
            status = await write_outcome(
                session,
                ctx.settings.catalog,
                claim.task,
                attempt_number=claim.attempt_number,
                executor_id="supervisor",
                outcome=noop,
                now=utcnow(),
            )

    assert [kind(statement) for statement in seen] == [
        "UPDATE task_attempts",  # fenced; locks the attempt before the task, as adoption does
        "INSERT INTO usage_records",  # every metric in one
        "UPDATE tasks",  # unless a cancel came first
        "UPDATE quota_reservations",  # settled, returning what the counter needs
        # The organization's webhook endpoints (none here): their messages are written in the
        # transaction of the final status, so none is lost or sent for a status rolled back.
        "SELECT webhook_endpoints.id,",
    ], seen
    assert status is TaskStatus.succeeded
    task = await task_row(ctx.sessionmaker, task_id)
    assert (task.status, task.result) == (TaskStatus.succeeded, {})
    assert set(await usage_of(ctx.sessionmaker, task_id)) == {
        (1, "cpu_seconds"),
        (1, "peak_memory_mb"),
        (1, "wall_seconds"),
        (1, "memory_gb_seconds"),
    }
    reservation = await reservation_of(ctx.sessionmaker, task.quota_reservation_id)
    assert (reservation.status, reservation.settled_amount) == (ReservationStatus.settled, 1)


async def test_a_dispatch_round_is_four_statements_however_many_organizations_it_serves(
    ctx: AppContext, signup: SignUp, engine_factory: EngineFactory
) -> None:
    accounts = [await signup() for _ in range(5)]
    for account in accounts:
        await set_plan(ctx.sessionmaker, account.organization_id, "big")
        await insert_tasks(ctx.sessionmaker, ctx.settings.catalog, account.organization_id, 3)
    engine = engine_factory(FakeRuntime(FakeScript(hang=True)), parallelism=10)

    with statements_on(ctx.engine) as seen:
        claims = await engine.dispatcher.dispatch_once()

    assert Counter(claim.organization_id for claim in claims) == {
        uuid.UUID(account.organization_id): 2 for account in accounts
    }
    # The organizations (locked), their due tasks (locked) and active counts, the claim.
    assert len(seen) == 4, seen
    assert [kind(statement) for statement in seen[2:]] == [
        "UPDATE tasks",
        "INSERT INTO task_attempts",
    ]
