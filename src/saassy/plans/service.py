"""The limits an organization actually has: its plan plus its contract's overrides."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import structlog

from saassy.models import Organization
from saassy.plans.catalog import OVERRIDABLE, Catalog, InvalidOverride, Plan, apply_overrides

log = structlog.get_logger(__name__)


def effective_plan(catalog: Catalog, organization: Organization) -> Plan:
    """The organization's plan with `plan_overrides` applied (validated when staff set them)."""
    return plan_with_overrides(
        catalog, organization.plan, organization.plan_overrides, organization.id
    )


def plan_with_overrides(
    catalog: Catalog,
    plan_key: str,
    overrides: Mapping[str, Any] | None,
    organization_id: uuid.UUID,
) -> Plan:
    """`effective_plan` from an organization's columns, when they were read without the row."""
    plan = catalog.plan(plan_key)
    # Overrides stored before a key was withdrawn (e.g. `overage_usd_per_task`, which was
    # refused then and is now the plan's alone): it was never honoured, so dropping it changes
    # nothing, and the rest of the contract still applies.
    overrides = {k: v for k, v in (overrides or {}).items() if k in OVERRIDABLE}
    if not overrides:
        return plan
    try:
        return apply_overrides(plan, overrides)
    except InvalidOverride as exc:
        # Only reachable if the plan schema changed under stored overrides: keep serving.
        log.warning("plan overrides ignored", organization_id=str(organization_id), error=str(exc))
        return plan
