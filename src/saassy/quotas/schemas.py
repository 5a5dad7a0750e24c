"""`/api/v1/usage`: what is used and what is left."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from saassy.metering.metrics import Aggregate
from saassy.plans.catalog import ResourceProfile
from saassy.quotas.periods import Period
from saassy.quotas.service import QuotaUsage, UsageSummary
from saassy.quotas.storage import StorageUsage


class PlanRef(BaseModel):
    key: str
    name: str


class UsagePeriod(BaseModel):
    """The current monthly window (calendar month, UTC)."""

    start: datetime
    end: datetime


class QuotaRead(BaseModel):
    metric: str = Field(examples=["tasks", "action:publish"])
    used: int
    limit: int | None = Field(description="Null: unlimited (still counted).")
    remaining: int | None = Field(description="Null: unlimited.")
    period: Period
    period_start: datetime
    resets_at: datetime

    @classmethod
    def of(cls, quota: QuotaUsage) -> QuotaRead:
        window = quota.window
        return cls(
            metric=window.metric,
            used=quota.used,
            limit=window.limit,
            remaining=quota.remaining,
            period=window.period,
            period_start=window.starts_at,
            resets_at=window.resets_at,
        )


class LimitsRead(BaseModel):
    """The organization's effective limits that are not counters (plan plus overrides)."""

    max_concurrent_tasks: int
    max_task_duration_s: int
    resources: ResourceProfile
    api_rate_limit: str


class StorageRead(BaseModel):
    """Artifacts the organization keeps now, against its plan's `storage_mb`."""

    used_mb: float = Field(description="Each file counted in whole KiB, rounded up.")
    limit_mb: int | None = Field(description="Null: unlimited.")
    remaining_mb: float | None = Field(description="Null: unlimited.")
    retention_days: int | None = Field(
        description="Artifacts and logs are deleted this long after their task ended; null: kept."
    )
    gb_months: float = Field(
        description="Storage metered in the metered window: each day's level once, "
        "as GB x days / days in that month."
    )

    @classmethod
    def of(cls, usage: StorageUsage) -> StorageRead:
        used = round(usage.used_kib / 1024, 3)
        limit = usage.plan.storage_mb
        return cls(
            used_mb=used,
            limit_mb=limit,
            remaining_mb=None if limit is None else max(0.0, round(limit - used, 3)),
            retention_days=usage.plan.retention_days,
            gb_months=round(usage.gb_months, 6),
        )


class MeteredRead(BaseModel):
    """What one task type used of one metric in the window, from the usage ledger."""

    task_type: str
    metric: str = Field(
        examples=[
            "cpu_seconds",
            "wall_seconds",
            "peak_memory_mb",
            "memory_gb_seconds",
            "compute_units",
            "action:publish",
            "units:pages",
        ]
    )
    quantity: float = Field(
        description="Seconds to the millisecond, MB to a tenth, actions whole, compute units "
        "(1 CU = 1 GB of reserved memory for an hour) to 6 decimals."
    )
    aggregate: Aggregate = Field(
        description="sum: added up over the window's attempts; max: the largest single "
        "attempt's (peak_memory_mb: peaks of different tasks never add up)."
    )
    tasks: int = Field(description="How many tasks contributed.")


class MeteredWindow(BaseModel):
    start: datetime
    end: datetime
    items: list[MeteredRead]


class UsageRead(BaseModel):
    organization_id: uuid.UUID
    plan: PlanRef
    period: UsagePeriod
    quotas: list[QuotaRead]
    limits: LimitsRead
    storage: StorageRead | None = None
    metered: MeteredWindow | None = None

    @classmethod
    def of(cls, summary: UsageSummary) -> UsageRead:
        plan = summary.plan
        return cls(
            organization_id=summary.organization_id,
            plan=PlanRef(key=plan.key, name=plan.name),
            period=UsagePeriod(start=summary.period_start, end=summary.period_end),
            quotas=[QuotaRead.of(quota) for quota in summary.quotas],
            limits=LimitsRead.model_validate(plan.model_dump(include=set(LimitsRead.model_fields))),
        )
