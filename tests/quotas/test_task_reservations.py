"""A task's reservations close by one rule, however the task ended."""

from __future__ import annotations

import uuid

import pytest

from saassy.context import AppContext
from saassy.dispatch.ledger import Metered, UsageLedger
from saassy.kit.time import utcnow
from saassy.models import QuotaReservation, ReservationStatus, Task, TaskStatus
from saassy.quotas.service import reserve
from saassy.quotas.task_reservations import close_task_reservations
from tests.quotas.conftest import MakeOrganization, counter_value


async def task_with_reservations(ctx: AppContext, organization_id: uuid.UUID) -> Task:
    """A task whose two attempts reported 2 and then 1 `publish`, as the ledger holds them."""
    catalog = ctx.settings.catalog
    async with ctx.sessionmaker() as session, session.begin():
        monthly = await reserve(session, catalog, organization_id, "tasks")
        publish = await reserve(session, catalog, organization_id, "action:publish")
        task = Task(
            organization_id=organization_id,
            type="echo",
            status=TaskStatus.failed,
            input={},
            timeout_s=10,
            run_after=utcnow(),
            attempt_count=2,
            quota_reservation_id=monthly.id,
            action_reservations={"publish": str(publish.id)},
        )
        session.add(task)
        await session.flush()
        for attempt, count in ((1, 2), (2, 1)):
            await UsageLedger(session).record(
                organization_id=organization_id,
                task_id=task.id,
                task_type="echo",
                attempt_number=attempt,
                usage=[Metered("action:publish", count)],
                now=utcnow(),
            )
    return task


async def closed(ctx: AppContext, reservation_id: uuid.UUID | str | None) -> tuple[str, int]:
    async with ctx.sessionmaker() as session:
        found = await session.get(QuotaReservation, uuid.UUID(str(reservation_id)))
        assert found is not None
        return found.status, found.settled_amount or 0


@pytest.mark.parametrize("ran", [True, False])
async def test_actions_count_what_every_attempt_reported_and_nothing_when_none_ran(
    ctx: AppContext, make_organization: MakeOrganization, ran: bool
) -> None:
    organization_id = await make_organization()
    task = await task_with_reservations(ctx, organization_id)
    async with ctx.sessionmaker() as session, session.begin():
        await close_task_reservations(session, task, ran=ran)

    assert task.action_reservations is not None
    publish = task.action_reservations["publish"]
    if ran:
        assert await closed(ctx, task.quota_reservation_id) == (ReservationStatus.settled, 1)
        assert await closed(ctx, publish) == (ReservationStatus.settled, 3)
        assert await counter_value(ctx, organization_id, "action:publish") == 3
    else:
        assert await closed(ctx, task.quota_reservation_id) == (ReservationStatus.released, 0)
        assert await closed(ctx, publish) == (ReservationStatus.released, 0)
        assert await counter_value(ctx, organization_id, "tasks") == 0
