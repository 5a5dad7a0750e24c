"""SQL for schedules and their runs: tenant reads take an OrganizationScope; the schedulers'
claim of a due schedule is a row lock (PostgreSQL: FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, select

from saassy.auth.principal import OrganizationScope
from saassy.kit.pagination import PageParams, keyset
from saassy.kit.repository import RepositoryBase
from saassy.kit.time import as_utc
from saassy.models import Organization, Schedule, ScheduleRun


class ScheduleRepository(RepositoryBase[Schedule]):
    model = Schedule

    async def get_of(
        self,
        schedule_id: uuid.UUID,
        organization_id: uuid.UUID,
        scope: OrganizationScope,
        *,
        lock: bool = False,
    ) -> Schedule | None:
        if organization_id not in scope:
            return None
        statement = self.select().where(
            Schedule.id == schedule_id, Schedule.organization_id == organization_id
        )
        return await self.one_or_none(statement.with_for_update() if lock else statement)

    async def list_of(
        self, organization_id: uuid.UUID, scope: OrganizationScope, params: PageParams
    ) -> Sequence[Schedule]:
        if organization_id not in scope:
            return []
        statement = self.select().where(Schedule.organization_id == organization_id)
        return await self.all(keyset(statement, params, Schedule.created_at, Schedule.id))

    async def count_of(self, organization_id: uuid.UUID) -> int:
        statement = select(func.count()).where(Schedule.organization_id == organization_id)
        return int(await self.session.scalar(statement) or 0)

    async def due_ids(self, now: datetime, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(schedule, organization) of active schedules due by `now`, earliest first, of live
        organizations: read without locks, each is claimed in its own transaction."""
        statement = (
            select(Schedule.id, Schedule.organization_id)
            .join(Organization, Organization.id == Schedule.organization_id)
            .where(
                Schedule.paused.is_(False),
                Schedule.next_run_at <= now,
                Organization.deleted_at.is_(None),
            )
            .order_by(Schedule.next_run_at, Schedule.id)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def claim_due(self, schedule_id: uuid.UUID, now: datetime) -> Schedule | None:
        """The schedule, locked, if it is still active and due; None if another scheduler
        holds it or acted on it since it was listed."""
        statement = (
            self.select()
            .where(
                Schedule.id == schedule_id,
                Schedule.paused.is_(False),
                Schedule.next_run_at <= now,
            )
            .with_for_update(skip_locked=True)
            # The row as it is now, not the session's copy from an earlier read.
            .execution_options(populate_existing=True)
        )
        return await self.one_or_none(statement)

    async def earliest_due(self) -> datetime | None:
        """When the next active schedule is due (the loop sleeps until then, at most)."""
        statement = (
            select(func.min(Schedule.next_run_at))
            .join(Organization, Organization.id == Schedule.organization_id)
            .where(Schedule.paused.is_(False), Organization.deleted_at.is_(None))
        )
        due: datetime | None = await self.session.scalar(statement)
        return as_utc(due) if due is not None else None

    async def delete_of_organization(self, organization_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(Schedule).where(Schedule.organization_id == organization_id)
        )


class ScheduleRunRepository(RepositoryBase[ScheduleRun]):
    model = ScheduleRun

    async def schedule_of_task(self, task_id: uuid.UUID) -> Schedule | None:
        """The schedule whose run submitted the task, if one did (and still exists)."""
        found = await self.session.scalars(
            select(Schedule)
            .join(ScheduleRun, ScheduleRun.schedule_id == Schedule.id)
            .where(ScheduleRun.task_id == task_id)
            .limit(1)
        )
        return found.one_or_none()

    async def history(self, schedule_id: uuid.UUID, params: PageParams) -> Sequence[ScheduleRun]:
        """A schedule's runs, newest first (the caller checked the schedule is the tenant's)."""
        statement = self.select().where(ScheduleRun.schedule_id == schedule_id)
        return await self.all(
            keyset(statement, params, ScheduleRun.created_at, ScheduleRun.id, newest_first=True)
        )

    async def prune(self, schedule_id: uuid.UUID, keep: int) -> None:
        """Keep the newest `keep` runs of the schedule: the unique key only ever guards its
        latest due times (a schedule's next due time only moves forward)."""
        oldest_kept = (
            select(ScheduleRun.created_at)
            .where(ScheduleRun.schedule_id == schedule_id)
            .order_by(ScheduleRun.created_at.desc(), ScheduleRun.id.desc())
            .offset(keep - 1)
            .limit(1)
            .scalar_subquery()
        )
        await self.session.execute(
            delete(ScheduleRun).where(
                ScheduleRun.schedule_id == schedule_id, ScheduleRun.created_at < oldest_kept
            )
        )
