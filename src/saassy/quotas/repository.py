"""SQL for quota counters and reservations: every change is one conditional statement."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, Integer, and_, bindparam, cast, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import ReturningInsert

from saassy.kit.repository import RepositoryBase, table_of
from saassy.kit.time import utcnow
from saassy.models import QuotaCounter, QuotaReservation, ReservationStatus
from saassy.quotas.periods import ACTION_PREFIX, TASKS


@cache
def _take_statement(dialect: str, limited: bool) -> ReturningInsert[int]:
    """The counter upsert of `QuotaCounterRepository.take`, built once per dialect."""
    counters = table_of(QuotaCounter)
    new_row = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(counters)
    new_total = counters.c.used + new_row.excluded.used
    # A limit may pass the 32-bit counter (a spend cap pays for billions of cheap tasks):
    # PostgreSQL would type the parameter as the column's integer and refuse the value.
    limit = cast(bindparam("limit"), BigInteger)
    return new_row.on_conflict_do_update(
        index_elements=["organization_id", "metric", "period_start"],
        set_={"used": new_total},
        where=(new_total <= limit) if limited else None,
    ).returning(counters.c.used)


# Built once: building and hashing a statement per call costs more CPU than running it.
_INSERT_RESERVATION = insert(table_of(QuotaReservation))
_reservations = table_of(QuotaReservation)
_CLOSE_RESERVATION = (
    update(_reservations)
    .where(
        _reservations.c.id == bindparam("reservation_id"),
        _reservations.c.status == ReservationStatus.reserved,
    )
    .values(
        status=bindparam("new_status"),
        settled_amount=func.coalesce(bindparam("settled", type_=Integer), _reservations.c.amount),
        closed_at=bindparam("closed"),
    )
    .returning(
        _reservations.c.organization_id,
        _reservations.c.metric,
        _reservations.c.period_start,
        _reservations.c.amount,
    )
)


@dataclass(frozen=True)
class ClosedReservation:
    """What a reservation held, as its close returned it: enough to move the counter."""

    organization_id: uuid.UUID
    metric: str
    period_start: date
    amount: int


class QuotaCounterRepository(RepositoryBase[QuotaCounter]):
    model = QuotaCounter

    def _where(self, organization_id: uuid.UUID, metric: str, period_start: date) -> Any:
        return and_(
            QuotaCounter.organization_id == organization_id,
            QuotaCounter.metric == metric,
            QuotaCounter.period_start == period_start,
        )

    async def take(
        self,
        organization_id: uuid.UUID,
        metric: str,
        period_start: date,
        amount: int,
        limit: int | None,
    ) -> bool:
        """Add `amount` to the period's counter, creating it, only if the total stays within
        `limit`; False when it would not.

        One upsert: PostgreSQL locks the conflicting row before it checks the limit, and SQLite
        holds the write lock, so concurrent callers at the limit take exactly the units left.
        """
        return (
            await self.take_counted(organization_id, metric, period_start, amount, limit)
            is not None
        )

    async def take_counted(
        self,
        organization_id: uuid.UUID,
        metric: str,
        period_start: date,
        amount: int,
        limit: int | None,
    ) -> int | None:
        """`take`, answering the counter's new total (None: nothing taken)."""
        if limit is not None and amount > limit:
            return None
        dialect = self.session.get_bind().dialect.name
        statement = _take_statement(dialect, limited=limit is not None)
        values = {
            "id": uuid.uuid4(),
            "created_at": utcnow(),
            "organization_id": organization_id,
            "metric": metric,
            "period_start": period_start,
            "used": amount,
        }
        if limit is not None:
            values["limit"] = limit
        row = (await self.session.execute(statement, values)).first()
        return None if row is None else row[0]

    async def give_back(
        self, organization_id: uuid.UUID, metric: str, period_start: date, amount: int
    ) -> None:
        await self.session.execute(
            update(QuotaCounter)
            .where(self._where(organization_id, metric, period_start))
            .values(used=QuotaCounter.used - amount)
            .execution_options(synchronize_session=False)
        )

    async def used(self, organization_id: uuid.UUID, metric: str, period_start: date) -> int:
        used = await self.session.scalar(
            select(QuotaCounter.used).where(self._where(organization_id, metric, period_start))
        )
        return used or 0

    async def current(
        self, organization_id: uuid.UUID, month: date, day: date
    ) -> Sequence[tuple[str, int]]:
        """(metric, used) of this month's task counter and today's action counters."""
        rows = await self.session.execute(
            select(QuotaCounter.metric, QuotaCounter.used)
            .where(
                QuotaCounter.organization_id == organization_id,
                or_(
                    and_(QuotaCounter.metric == TASKS, QuotaCounter.period_start == month),
                    and_(
                        QuotaCounter.metric.startswith(ACTION_PREFIX, autoescape=True),
                        QuotaCounter.period_start == day,
                    ),
                ),
            )
            .order_by(QuotaCounter.metric)
        )
        return [(metric, used) for metric, used in rows.all()]


class QuotaReservationRepository(RepositoryBase[QuotaReservation]):
    model = QuotaReservation

    async def insert_reserved(
        self, organization_id: uuid.UUID, metric: str, period_start: date, amount: int
    ) -> uuid.UUID:
        """A new reservation in `reserved`, inserted at once (no ORM object to flush)."""
        reservation_id = uuid.uuid4()
        await self.session.execute(
            _INSERT_RESERVATION,
            {
                "id": reservation_id,
                "created_at": utcnow(),
                "organization_id": organization_id,
                "metric": metric,
                "period_start": period_start,
                "amount": amount,
                "status": ReservationStatus.reserved,
            },
        )
        return reservation_id

    async def close(
        self,
        reservation_id: uuid.UUID,
        status: ReservationStatus,
        settled_amount: int | None,
        now: datetime,
    ) -> ClosedReservation | None:
        """Move a reservation out of `reserved`, counting `settled_amount` (None: all of it);
        None if it was already closed (idempotence) or does not exist."""
        result = await self.session.execute(
            _CLOSE_RESERVATION,
            {
                "reservation_id": reservation_id,
                "new_status": status,
                "settled": settled_amount,
                "closed": now,
            },
        )
        row = result.first()
        return None if row is None else ClosedReservation(*row)
