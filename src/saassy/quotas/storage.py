"""The storage quota: how much of its plan's `storage_mb` an organization's artifacts hold.

Storage is a level, not a flow: one counter per organization (in KiB, each file rounded up, so
it fits the counters' integer column), moved by the same conditional upsert as the task quota,
so concurrent attempts at the limit never store more than it. Collecting an output takes its
size before any byte reaches storage; discarding and retention give it back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from saassy.kit.errors import NotFound
from saassy.organizations.repository import OrganizationRepository
from saassy.plans.catalog import Catalog, Plan
from saassy.plans.service import effective_plan
from saassy.quotas.repository import QuotaCounterRepository
from saassy.quotas.storage_repository import LEVEL, STORAGE, StorageRepository


def kib(size_bytes: int) -> int:
    return -(-size_bytes // 1024)


class StorageQuotaExceeded(Exception):
    """Storing `needed_kib` more would pass the plan's `storage_mb`."""

    def __init__(self, used_kib: int, limit_kib: int, needed_kib: int) -> None:
        self.used_kib = used_kib
        self.limit_kib = limit_kib
        self.needed_kib = needed_kib
        super().__init__(
            f"the organization's storage holds {_mb(used_kib)} MB of its {_mb(limit_kib)} MB; "
            f"this output needs {_mb(needed_kib)} MB more"
        )


def _mb(amount_kib: int) -> str:
    # Two decimals, and never 0.00 for something held: 4 KiB must not read as empty.
    return f"{max(amount_kib / 1024, 0.01 if amount_kib else 0):.2f}"


def storage_limit_kib(plan: Plan) -> int | None:
    return None if plan.storage_mb is None else plan.storage_mb * 1024


async def take_storage(
    session: AsyncSession, plan: Plan, organization_id: uuid.UUID, amount_kib: int
) -> None:
    """Count `amount_kib` more against the plan, or StorageQuotaExceeded (nothing counted)."""
    if amount_kib <= 0:
        return
    limit = storage_limit_kib(plan)
    counters = QuotaCounterRepository(session)
    if not await counters.take(organization_id, STORAGE, LEVEL, amount_kib, limit):
        assert limit is not None
        used = await counters.used(organization_id, STORAGE, LEVEL)
        raise StorageQuotaExceeded(used, limit, amount_kib)


async def give_back_storage(
    session: AsyncSession, organization_id: uuid.UUID, amount_kib: int
) -> None:
    if amount_kib > 0:
        await QuotaCounterRepository(session).give_back(organization_id, STORAGE, LEVEL, amount_kib)


async def storage_used_kib(session: AsyncSession, organization_id: uuid.UUID) -> int:
    return await QuotaCounterRepository(session).used(organization_id, STORAGE, LEVEL)


@dataclass(frozen=True)
class StorageUsage:
    plan: Plan
    used_kib: int
    gb_months: float  # metered in the window asked for


async def storage_usage(
    session: AsyncSession, plan: Plan, organization_id: uuid.UUID, start: date, end: date
) -> StorageUsage:
    """What the organization's artifacts hold now, and the GB-months metered in [start, end)."""
    gb_months = await StorageRepository(session).gb_months(organization_id, start, end)
    return StorageUsage(plan, await storage_used_kib(session, organization_id), gb_months)


@dataclass(frozen=True)
class StorageQuota:
    """The storage quota for a caller outside a request: each call its own short transaction."""

    sessionmaker: async_sessionmaker[AsyncSession]
    catalog: Catalog

    async def take(self, organization_id: uuid.UUID, amount_kib: int) -> None:
        async with self.sessionmaker() as session, session.begin():
            organization = await OrganizationRepository(session).get(organization_id)
            if organization is None:
                raise NotFound("Organization")
            plan = effective_plan(self.catalog, organization)
            await take_storage(session, plan, organization_id, amount_kib)

    async def give_back(self, organization_id: uuid.UUID, amount_kib: int) -> None:
        if amount_kib <= 0:
            return
        async with self.sessionmaker() as session, session.begin():
            await give_back_storage(session, organization_id, amount_kib)
