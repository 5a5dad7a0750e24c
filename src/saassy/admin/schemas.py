"""Staff views of tenants."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PlanAssignment(BaseModel):
    """Put an organization on a plan; `overrides` replaces the previous ones (omitted: none)."""

    model_config = ConfigDict(extra="forbid")

    plan: str = Field(max_length=40, examples=["pro"])
    overrides: dict[str, Any] | None = Field(
        None,
        description=(
            "Per-customer limits on top of the plan, same keys as a plan (tasks_per_month, "
            "max_concurrent_tasks, resources, daily_action_caps, api_rate_limit, ...)."
        ),
        examples=[{"tasks_per_month": 50000, "daily_action_caps": {"publish": 500}}],
    )


class AdminOrganization(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    personal: bool
    plan: str
    plan_overrides: dict[str, Any]
    created_at: datetime
    deleted_at: datetime | None
