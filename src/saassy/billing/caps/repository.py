"""SQL for spend caps, and what admission reads beside one: the subscription, who to warn."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import delete, or_, update
from sqlalchemy.exc import IntegrityError

from saassy.kit.repository import RepositoryBase
from saassy.models import SpendCap


class SpendCapRepository(RepositoryBase[SpendCap]):
    model = SpendCap

    async def get_for(self, organization_id: uuid.UUID) -> SpendCap | None:
        return await self.one_or_none(
            self.select().where(SpendCap.organization_id == organization_id)
        )

    async def put(self, organization_id: uuid.UUID, monthly_cap_cents: int) -> SpendCap:
        """Set the cap; a changed cap may warn again this month (at 80% of the new one)."""
        cap = await self.get_for(organization_id)
        if cap is None:
            try:
                async with self.session.begin_nested():
                    return await self.add(
                        SpendCap(
                            organization_id=organization_id, monthly_cap_cents=monthly_cap_cents
                        )
                    )
            except IntegrityError:  # a concurrent PUT made it first: change that one
                cap = await self.get_for(organization_id)
                assert cap is not None
        if cap.monthly_cap_cents != monthly_cap_cents:
            cap.monthly_cap_cents = monthly_cap_cents
            cap.warned_for_period = None
            await self.session.flush()
        return cap

    async def remove(self, organization_id: uuid.UUID) -> None:
        await self.session.execute(
            delete(SpendCap).where(SpendCap.organization_id == organization_id)
        )

    async def mark_warned(self, organization_id: uuid.UUID, period: date) -> bool:
        """Record the month's warning; False when it was already recorded. One conditional
        UPDATE: of concurrent admissions crossing 80%, exactly one sees True."""
        result = await self.session.execute(
            update(SpendCap)
            .where(
                SpendCap.organization_id == organization_id,
                or_(SpendCap.warned_for_period.is_(None), SpendCap.warned_for_period != period),
            )
            .values(warned_for_period=period)
            .returning(SpendCap.id)
            .execution_options(synchronize_session=False)
        )
        return result.first() is not None
