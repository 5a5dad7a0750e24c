"""What the public sees of a plan."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field, PlainSerializer

from saassy.plans.catalog import Plan, ResourceProfile

# Prices travel as JSON numbers (clients expect 19.0, not "19").
Money = Annotated[Decimal, PlainSerializer(float, return_type=float, when_used="json")]


class PublicPlan(BaseModel):
    """A plan as customers compare them; null limits are unlimited."""

    key: str
    name: str
    description: str
    price_usd_month: Money | None = Field(description="Null: custom price (contact sales).")
    tasks_per_month: int | None = Field(description="Null: unlimited.")
    max_concurrent_tasks: int
    max_task_duration_s: int
    resources: ResourceProfile
    daily_action_caps: dict[str, int] = Field(
        description="Per-action daily caps; an action not listed is unlimited."
    )
    api_rate_limit: str = Field(examples=["60/minute"])

    @classmethod
    def of(cls, plan: Plan) -> PublicPlan:
        return cls.model_validate(plan.model_dump(exclude={"public"}))
