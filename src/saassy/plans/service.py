"""The limits an organization actually has: its plan plus its contract's overrides."""

from __future__ import annotations

import structlog

from saassy.models import Organization
from saassy.plans.catalog import Catalog, InvalidOverride, Plan, apply_overrides

log = structlog.get_logger(__name__)


def effective_plan(catalog: Catalog, organization: Organization) -> Plan:
    """The organization's plan with `plan_overrides` applied (validated when staff set them)."""
    plan = catalog.plan(organization.plan)
    if not organization.plan_overrides:
        return plan
    try:
        return apply_overrides(plan, organization.plan_overrides)
    except InvalidOverride as exc:
        # Only reachable if the plan schema changed under stored overrides: keep serving.
        log.warning("plan overrides ignored", organization_id=str(organization.id), error=str(exc))
        return plan
