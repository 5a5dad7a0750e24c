"""`/api/v1/plans`: the public plan catalog."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from saassy.auth.dependencies import anonymous_rate_limit
from saassy.auth.scopes import READ_OR_ADMIN
from saassy.deps import SettingsDep
from saassy.plans.schemas import PublicPlan

router = APIRouter(prefix="/plans", tags=["plans"], dependencies=[READ_OR_ADMIN])


@router.get("", dependencies=[Depends(anonymous_rate_limit)])
async def list_plans(settings: SettingsDep) -> list[PublicPlan]:
    """The plans customers can choose from (anyone may read them)."""
    return [PublicPlan.of(plan) for plan in settings.catalog.plans.values() if plan.public]
